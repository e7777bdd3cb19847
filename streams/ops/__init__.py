"""Operations: replay, dead letters and lag views for the people who run the connector."""

"""Unit tests of the receiver adapters (no network beyond httpx.MockTransport)."""

"""Receiver adapters: the contract, the generic REST adapter and the reference receiver."""

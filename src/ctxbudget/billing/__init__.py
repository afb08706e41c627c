"""What a call was billed and what it costs: usage in one shape, prices, dollars.

Core, below everything: imports only ``errors``.
"""

"""The live Octavia v2 API twin (``lbsim serve``): the Twin, the API server, its controls and live page."""

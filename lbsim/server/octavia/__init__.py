"""Octavia v2 API of ``lbsim serve``: request types, response shapes, list semantics, routers."""

"""The scenario: its pydantic schema, safe YAML loading with file:line errors, and validation.

Imports nothing else of lbsim: every other subpackage reads scenarios through this one.
"""

"""Example applications built with triows."""

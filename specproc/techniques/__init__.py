"""Technique plugins (nmr, xrd, ...): same shape each — processors, cli, report section."""

"""Hardening audit of native files (ELF now; Mach-O, archives walk and reports to come)."""

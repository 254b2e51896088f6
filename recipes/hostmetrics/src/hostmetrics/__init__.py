"""Host CPU, memory and disk report."""

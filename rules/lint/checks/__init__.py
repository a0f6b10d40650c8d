"""The lint checks, one module per family: syntax, semantic, attack, performance, style."""

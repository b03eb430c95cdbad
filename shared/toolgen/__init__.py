"""Tool preparation: tools from a database's schema or from seed tools, verified, typed and given output schemas.

Each model call here is one ModelCall class with its prompt, answer schema and parser. Answer schemas stay small
and flat (no patterns or length limits): a constrained decoder turns every limit into grammar states, which makes
a small local model slow; names and SQL are checked mechanically afterwards instead.
"""

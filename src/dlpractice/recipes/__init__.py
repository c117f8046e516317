"""Recipes several labs share: steps that train with `fit()` and write to the run (figures, sections).

The layer between the labs and the library. A lab never imports another lab; what two or more labs do
the same way, and that needs `fit()` or the run context, lives here (makemore.py: l3-l7; seq2seq.py:
n4-n5). Models, data and building blocks that need neither go lower, to models/, data/ or nn/, which
never import fit(), recipes or labs (the contracts in .importlinter check it).
"""

import sys

# Belt and braces with PYTHONDONTWRITEBYTECODE=1: modules imported from here on leave no
# __pycache__ in the tree.
sys.dont_write_bytecode = True

"""transformer_tutorial: the shared, tested package behind the interactive Transformer book.

Each module holds one idea of the book, under the name the book uses for it. Importing the
package does no work: chapters call into it.
"""

__version__ = "0.1.0"

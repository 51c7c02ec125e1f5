"""(placeholder, filled by the product's engineer)"""

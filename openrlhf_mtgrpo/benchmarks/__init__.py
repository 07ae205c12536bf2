"""The benchmark domains (tau-bench's airline; tau2-bench's retail, telecom, banking_knowledge).

They register through entry points as any third-party domain package does; the core never imports them.
"""

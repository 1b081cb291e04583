"""Exports for the statistician: CSV per table with the audit trail, and CDISC ODM 1.3.2 XML
of the clinical data. Only statisticians, monitors and administrators export; only the
patients of their sites; never a future randomization slot."""

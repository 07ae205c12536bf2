"""All OpenRLHF-specific glue lives in this sub-package; the method itself does not import OpenRLHF."""

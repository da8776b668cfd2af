#!/bin/sh
# case_4.sh - placeholder: Dirichlet regression on the 461-row data repeated.
# Not yet available (the Dirichlet model is not in the library yet).
echo "  case 4 (Dirichlet, 461 rows repeated): not yet available" >&2
printf '## Case 4: Dirichlet regression (461 rows repeated)\n\nNot yet available.\n\n'

"""SAM local testing on a Debian machine without Docker (scripts/sam-local.sh)."""

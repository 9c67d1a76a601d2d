"""The households plugin's SQL: invitations, members and the pets' history."""

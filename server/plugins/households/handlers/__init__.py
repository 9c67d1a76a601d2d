"""The households plugin's handlers: invitations, members and history."""

"""What each host installs: inventory, boot configs, Kickstarts, install states, callbacks."""

"""The call log (seed 5.10): calls, their channel legs, who called whom and how it ended."""

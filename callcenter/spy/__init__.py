"""Supervisors listen, whisper or barge on a live call (/calls/{call_id}/spy): ChanSpy on the agent's channel, the
supervisor's phone rung."""

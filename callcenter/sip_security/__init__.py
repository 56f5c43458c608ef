"""SIP brute-force protection: failed authentications read from Asterisk's security events ban their address in the
PJSIP ACL for a while."""

"""Supervision cases (督办, seed 6.6): overdue orders, repeated complaints and dissatisfied results are escalated
automatically; urging the provider (a call or a platform message) and its result are recorded and count in the
provider's evaluation. (Live call listening is ``callcenter.supervision``; this is the case-handling kind.)"""

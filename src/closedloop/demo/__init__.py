"""``closedloop demo``: the reference article's support-triage case study, run through the
real path (openai SDK, ``instrument()``, OTLP to ``closedloop serve``, tail sampling, the
chDB store, its views and ``compare``) on a simulated clock.

Modules: ``_scenario`` (ticket kinds and the scripted model: who gets misrouted),
``_bot`` (the support app), ``_helpdesk`` (late outcome feedback), ``_serve`` (the
backend subprocess), ``_run`` (the timeline), ``_output`` (what is printed), ``_cli``
(the command).
"""

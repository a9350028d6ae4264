"""Writes for the tenants app: registration, tickets, install, sync and lifecycle.

Views, tasks, admin actions, commands and callback handlers only call these (through
this package: ``from tenants import services``). WeCom calls happen outside
transactions (no row lock is held while waiting on the network).

- ``registration``: the provider, its suites, the suite tickets WeCom pushes;
- ``install``: install links and the auth-code exchange (exactly once);
- ``sync``: re-reading an authorization from WeCom;
- ``events``: lifecycle callbacks applied in event time (tenants/lifecycle.py);
- suspend, resume and cancel are tenants/transitions.py's (below the token layer,
  which suspends a tenant whose corp is gone), re-exported here.
"""

from tenants.services.events import ACTIVITY_MOVES
from tenants.services.events import authorization_activity_event
from tenants.services.events import authorization_cancel_event
from tenants.services.events import authorization_change_event
from tenants.services.events import authorization_edition_event
from tenants.services.install import CUSTOMIZED_STATE_MAX
from tenants.services.install import DECISION_ATTEMPTS
from tenants.services.install import INSTALL_FOLLOW_UP_TASK
from tenants.services.install import InstallFailed
from tenants.services.install import InstallInProgress
from tenants.services.install import InstallLink
from tenants.services.install import InstallLinkInvalid
from tenants.services.install import authorization_install
from tenants.services.install import authorization_install_follow_up
from tenants.services.install import follow_up_delay
from tenants.services.install import install_link_create
from tenants.services.registration import callback_urls
from tenants.services.registration import provider_register
from tenants.services.registration import suite_register
from tenants.services.registration import suite_ticket_store
from tenants.services.sync import authorization_sync
from tenants.services.sync import authorizations_reconcile
from tenants.transitions import FEED_TYPES
from tenants.transitions import authorization_cancel
from tenants.transitions import authorization_resume
from tenants.transitions import authorization_suspend

__all__ = [
    "ACTIVITY_MOVES",
    "CUSTOMIZED_STATE_MAX",
    "DECISION_ATTEMPTS",
    "FEED_TYPES",
    "INSTALL_FOLLOW_UP_TASK",
    "InstallFailed",
    "InstallInProgress",
    "InstallLink",
    "InstallLinkInvalid",
    "authorization_activity_event",
    "authorization_cancel",
    "authorization_cancel_event",
    "authorization_change_event",
    "authorization_edition_event",
    "authorization_install",
    "authorization_install_follow_up",
    "authorization_resume",
    "authorization_suspend",
    "authorization_sync",
    "authorizations_reconcile",
    "callback_urls",
    "follow_up_delay",
    "install_link_create",
    "provider_register",
    "suite_register",
    "suite_ticket_store",
]

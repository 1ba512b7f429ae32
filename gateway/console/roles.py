"""Roles and what each may do. Every handler names one permission; the server
checks it, whatever the browser shows or hides.

Least privilege: the auditor reads the access register and nothing else (it
audits access to records, it does not need them); the admin manages accounts but
handles no alarms; the installer sees devices and their history (walk tests), not
the alarm queue.
"""
ROLES = ("operator", "supervisor", "auditor", "installer", "admin")

PERMISSIONS = {
    "queue.read": {"operator", "supervisor"},
    "alarm.handle": {"operator", "supervisor"},       # take, dispose, dispatch
    "alarm.reassign": {"supervisor"},                  # give an alarm to someone else
    "devices.read": {"operator", "supervisor", "installer"},
    "devices.walktest": {"installer", "supervisor"},  # put a device on test while its zones are tripped
    "vehicles.read": {"operator", "supervisor"},
    # let a vehicle's terminal register again (lost code, swapped terminal): who may
    # decide that a new terminal speaks for the vehicle
    "vehicles.release": {"supervisor", "admin"},
    "events.search": {"operator", "supervisor"},       # search and export
    "reports.read": {"supervisor"},
    "register.read": {"auditor"},
    "users.admin": {"admin"},
}

# The pages each role reaches from the menu, first one = where login lands.
PAGES = {
    "operator": ["queue", "devices", "vehicles", "search"],
    "supervisor": ["queue", "devices", "vehicles", "search", "reports"],
    "auditor": ["register"],
    "installer": ["devices"],
    "admin": ["users"],
}


def allowed(role, permission):
    return role in PERMISSIONS[permission]

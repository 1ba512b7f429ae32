# SIA DC-03 event codes (two letters) that panels send in SIA-DCS frames, with the
# same event classes and categories as Contact ID (contactid.classify) so the
# gateway routes both formats alike. Names as in SIA DC-03 Annex; the common subset.
CODES = {
    "BA": ("Burglary alarm", "alarm", "burglary"), "BR": ("Burglary restoral", "alarm", "burglary"),
    "BB": ("Burglary bypass", "bypass", "bypass"), "BU": ("Burglary unbypass", "bypass", "bypass"),
    "BT": ("Burglary trouble", "trouble", "system"), "BJ": ("Burglary trouble restore", "trouble", "system"),
    "FA": ("Fire alarm", "alarm", "fire"), "FR": ("Fire restoral", "alarm", "fire"),
    "FT": ("Fire trouble", "trouble", "fire"), "FJ": ("Fire trouble restore", "trouble", "fire"),
    "FB": ("Fire bypass", "bypass", "bypass"),
    "PA": ("Panic alarm", "alarm", "panic"), "PR": ("Panic restoral", "alarm", "panic"),
    "HA": ("Holdup alarm (duress)", "alarm", "duress"), "HR": ("Holdup restoral", "alarm", "duress"),
    "MA": ("Medical alarm", "alarm", "medical"), "MR": ("Medical restoral", "alarm", "medical"),
    "GA": ("Gas alarm", "alarm", "gas"), "GR": ("Gas restoral", "alarm", "gas"),
    "KA": ("Heat alarm", "alarm", "fire"), "KR": ("Heat restoral", "alarm", "fire"),
    "WA": ("Water alarm", "alarm", "environmental"), "WR": ("Water restoral", "alarm", "environmental"),
    "TA": ("Tamper alarm", "alarm", "tamper"), "TR": ("Tamper restoral", "alarm", "tamper"),
    "ZA": ("Freeze alarm", "alarm", "environmental"), "ZR": ("Freeze restoral", "alarm", "environmental"),
    "UA": ("Untyped zone alarm", "alarm", "other"), "UR": ("Untyped zone restoral", "alarm", "other"),
    "AT": ("AC trouble", "trouble", "power"), "AR": ("AC restoral", "trouble", "power"),
    "YT": ("System battery trouble", "trouble", "power"), "YR": ("System battery restoral", "trouble", "power"),
    "YC": ("Communications fail", "trouble", "communication"), "YK": ("Communications restoral", "trouble", "communication"),
    "YX": ("Service required", "trouble", "system"), "RR": ("Power up", "trouble", "system"),
    "CL": ("Closing report", "open_close", "arming"), "OP": ("Opening report", "open_close", "arming"),
    "CA": ("Automatic closing", "open_close", "arming"), "OA": ("Automatic opening", "open_close", "arming"),
    "CG": ("Close area", "open_close", "arming"), "OG": ("Open area", "open_close", "arming"),
    "NL": ("Perimeter armed (stay)", "open_close", "arming"), "CR": ("Recent closing", "open_close", "arming"),
    "DG": ("Access granted", "access", "access"), "DD": ("Access denied", "access", "access"),
    "DF": ("Door forced", "alarm", "access"), "DN": ("Door left open", "alarm", "access"),
    "JA": ("User code tamper", "access", "access"),
    "RP": ("Automatic test", "test", "test"), "RX": ("Manual test", "test", "test"),
    "TS": ("Test start", "test", "test"), "TE": ("Test end", "test", "test"),
    "LB": ("Local program begin", "other", "system"), "LX": ("Local program end", "other", "system"),
}


def describe(code):
    """(name, event_class, category) for a two-letter SIA code."""
    return CODES.get(code, ("unknown SIA code " + code, "other", "other"))

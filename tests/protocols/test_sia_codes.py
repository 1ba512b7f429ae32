"""SIA DC-03 codes map to Contact ID events, so both formats route alike."""
from protocols import contactid, sia_codes


def test_every_sia_code_is_a_named_contact_id_event():
    for code, (name, cid, qualifier) in sia_codes.CODES.items():
        assert len(code) == 2 and code.isupper(), code
        assert not contactid.describe(cid)[0].startswith("unknown"), (code, cid)
        assert qualifier in (contactid.QUALIFIER_NEW, contactid.QUALIFIER_RESTORE), code
        assert sia_codes.SIA_TO_CONTACT_ID[code] == (cid, qualifier)
        assert sia_codes.describe(code)[1:] == contactid.classify(cid)


def test_what_pysiaalarm_calls_these_codes():
    # pysiaalarm maps Contact ID 130 new to BA and 121 to HA (tests/protocols/
    # test_dc09_interop.py sees it do so); the same pairs hold in our table.
    assert sia_codes.SIA_TO_CONTACT_ID["BA"] == (130, 1)
    assert sia_codes.SIA_TO_CONTACT_ID["HA"] == (121, 1)
    assert sia_codes.SIA_TO_CONTACT_ID["CL"] == (401, 3)
    assert sia_codes.describe("ZZ") == ("unknown SIA code ZZ", "other", "other")

"""RelaxNG archiving profiles as a profile tool (SHERPA) exports them, reduced to what the tests check."""

from __future__ import annotations

SEDA22 = "fr:gouv:culture:archivesdefrance:seda:v2.2"


def act_profile(agreement: str = "CONV-AD031-ACTES", *, head: str = "") -> str:
    """A profile fixing the ArchivalAgreement of act transfers, anything else allowed; ``head`` goes first."""
    return f'''<grammar xmlns="http://relaxng.org/ns/structure/1.0" ns="{SEDA22}"
 datatypeLibrary="http://www.w3.org/2001/XMLSchema-datatypes">{head}
 <start><element name="ArchiveTransfer"><ref name="any-attributes"/>
  <interleave>
   <element name="ArchivalAgreement"><value>{agreement}</value></element>
   <zeroOrMore><element><anyName><except><name>ArchivalAgreement</name></except></anyName><ref name="anything"/>
   </element></zeroOrMore>
  </interleave></element></start>
 <define name="any-attributes"><zeroOrMore><attribute><anyName/></attribute></zeroOrMore></define>
 <define name="anything"><zeroOrMore><choice><attribute><anyName/></attribute><text/>
  <element><anyName/><ref name="anything"/></element></choice></zeroOrMore></define>
</grammar>'''

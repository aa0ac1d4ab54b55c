// WS-Management envelopes and answers. What a real server sends is checked end to end in the
// winrm plugin's test against the peer; here: the shapes, the fault classes and the refusals.
#include <catch2/catch.hpp>
#include <outpost_lib/wsman.hpp>
#include <string>

namespace ws = outpost::lib::wsman;

namespace {

const char* kEnumerateAnswer = R"(<?xml version="1.0" encoding="UTF-8"?>
<s:Envelope xml:lang="en-US" xmlns:s="http://www.w3.org/2003/05/soap-envelope"
 xmlns:a="http://schemas.xmlsoap.org/ws/2004/08/addressing"
 xmlns:n="http://schemas.xmlsoap.org/ws/2004/09/enumeration"
 xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd">
<s:Header><a:To>http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous</a:To>
<a:Action>http://schemas.xmlsoap.org/ws/2004/09/enumeration/EnumerateResponse</a:Action>
<a:MessageID>uuid:1</a:MessageID><a:RelatesTo>uuid:AB</a:RelatesTo></s:Header>
<s:Body><n:EnumerateResponse><n:EnumerationContext>uuid:CTX-1</n:EnumerationContext>
<w:Items>
<p:Win32_Service xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_Service"
 xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common">
<p:Name>Spooler</p:Name><p:State>Running</p:State><p:Description xsi:nil="true"/>
<p:Caption>Print &amp; Spooler</p:Caption></p:Win32_Service>
<p:Win32_NTLogEvent xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/Win32_NTLogEvent"
 xmlns:cim="http://schemas.dmtf.org/wbem/wscim/1/common">
<p:InsertionStrings>a</p:InsertionStrings><p:InsertionStrings>b</p:InsertionStrings>
<p:TimeGenerated><cim:Datetime>2026-12-05T18:30:00Z</cim:Datetime></p:TimeGenerated>
</p:Win32_NTLogEvent>
</w:Items></n:EnumerateResponse></s:Body></s:Envelope>)";

}  // namespace

TEST_CASE("wsman: an Enumerate answer's items, arrays, nils and datetimes") {
  const ws::Response r = ws::parse(kEnumerateAnswer);
  CHECK_FALSE(r.fault);
  CHECK(r.relates_to == "uuid:AB");
  CHECK(r.context == "uuid:CTX-1");
  CHECK_FALSE(r.end_of_sequence);
  REQUIRE(r.items.size() == 2);
  const ws::Instance& svc = r.items[0];
  CHECK(svc.class_name == "Win32_Service");
  REQUIRE(svc.find("name"));
  CHECK(*svc.find("NAME")->value() == "Spooler");
  CHECK(svc.find("Description")->null);
  CHECK(svc.find("Description")->value() == nullptr);
  CHECK(*svc.find("Caption")->value() == "Print & Spooler");
  CHECK(svc.find("Missing") == nullptr);
  const ws::Instance& ev = r.items[1];
  REQUIRE(ev.find("InsertionStrings"));
  CHECK(ev.find("InsertionStrings")->values == std::vector<std::string>{"a", "b"});
  CHECK(*ev.find("TimeGenerated")->value() == "2026-12-05T18:30:00Z");
}

TEST_CASE("wsman: faults carry their class") {
  auto fault = [](std::string sub, std::string code) {
    const std::string xml =
        R"(<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope" xmlns:w="http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd"><s:Body><s:Fault><s:Code><s:Value>s:Sender</s:Value><s:Subcode><s:Value>w:)" +
        sub +
        R"(</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US">Reason text</s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code=")" +
        code +
        R"(" Machine="win1"><f:Message>Detail message. </f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>)";
    const ws::Response r = ws::parse(xml);
    REQUIRE(r.fault);
    return *r.fault;
  };
  CHECK(fault("AccessDenied", "5").status() == OUTPOST_E_AUTH);
  CHECK(fault("AccessDenied", "5").text() == "AccessDenied (5): Detail message.");
  CHECK(fault("QuotaLimit", "2150859174").status() == OUTPOST_E_BUSY);
  CHECK(fault("TimedOut", "2150858793").status() == OUTPOST_E_TIMEOUT);
  CHECK(fault("InvalidSelectors", "2150858843").status() == OUTPOST_E_NOT_FOUND);
  CHECK(fault("CannotProcessFilter", "2150858770").status() == OUTPOST_E_CONFIG);
  CHECK(fault("InternalError", "2147749902").status() == OUTPOST_E_NOT_FOUND);  // bad namespace
  CHECK(fault("InternalError", "2147749911").status() == OUTPOST_E_CONFIG);     // bad query
  CHECK(fault("InternalError", "1").status() == OUTPOST_E_UNAVAILABLE);
  CHECK(fault("QuotaLimit", "2150859174").text() == "QuotaLimit (0x803381A6): Detail message.");
}

TEST_CASE("wsman: the WMI error nested in a WinRM fault decides its class") {
  // As Windows sends a WMI failure: the WinRM code outside, WMI's inside a ProviderFault.
  const std::string xml =
      R"(<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Reason><s:Text xml:lang="en-US"></s:Text></s:Reason><s:Detail><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150859010" Machine="win1"><f:Message><f:ProviderFault provider="WMI Provider" path="%systemroot%\system32\WsmWmiPl.dll"><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2147749902" Machine="win1"><f:Message>Invalid namespace </f:Message></f:WSManFault><f:ExtendedError/></f:ProviderFault></f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>)";
  const auto r = ws::parse(xml);
  REQUIRE(r.fault);
  CHECK(r.fault->wsman_code == 2147749902u);
  CHECK(r.fault->status() == OUTPOST_E_NOT_FOUND);
  CHECK(r.fault->message == "Invalid namespace");
  // Newer builds: an MSFT_WmiError beside, whose error_Code wins.
  const std::string xml2 =
      R"(<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body><s:Fault><s:Code><s:Value>s:Receiver</s:Value><s:Subcode><s:Value>w:InternalError</s:Value></s:Subcode></s:Code><s:Detail><p:MSFT_WmiError xmlns:p="http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/MSFT_WmiError"><p:error_Code>2147749891</p:error_Code><p:Message>Access denied </p:Message></p:MSFT_WmiError><f:WSManFault xmlns:f="http://schemas.microsoft.com/wbem/wsman/1/wsmanfault" Code="2150859010"><f:Message>The WS-Management service cannot process the request.</f:Message></f:WSManFault></s:Detail></s:Fault></s:Body></s:Envelope>)";
  const auto r2 = ws::parse(xml2);
  REQUIRE(r2.fault);
  CHECK(r2.fault->wsman_code == 0x80041003u);
  CHECK(r2.fault->status() == OUTPOST_E_AUTH);
}

TEST_CASE("wsman: envelopes parse back and escape what they carry") {
  ws::Header h;
  h.to = "http://win1:5985/wsman";
  h.resource_uri = ws::wmi_resource_uri("ROOT\\CIMV2", "*");
  h.action = std::string(ws::action::enumerate);
  h.message_id = "uuid:X";
  h.selectors = {{"Name", "a<b"}};
  const std::string env = ws::envelope(h, ws::enumerate_body("SELECT * FROM X WHERE A='<&>'", 50));
  CHECK(h.resource_uri == "http://schemas.microsoft.com/wbem/wsman/1/wmi/root/cimv2/*");
  CHECK(env.find("<w:Filter Dialect=\"http://schemas.microsoft.com/wbem/wsman/1/WQL\">SELECT * "
                 "FROM X WHERE A=&apos;&lt;&amp;&gt;&apos;</w:Filter>") != std::string::npos);
  CHECK(env.find("<w:OperationTimeout>PT60S</w:OperationTimeout>") != std::string::npos);
  CHECK(env.find("<w:Selector Name=\"Name\">a&lt;b</w:Selector>") != std::string::npos);
  const ws::Response r = ws::parse(env);  // well-formed, SOAP 1.2
  CHECK_FALSE(r.fault);
  CHECK(ws::new_message_id() != ws::new_message_id());
  CHECK(ws::new_message_id().size() == 41);
  CHECK(ws::invoke_body("urn:x", "StartService", {}) ==
        "<p:StartService_INPUT xmlns:p=\"urn:x\"/>");
}

TEST_CASE("wsman: refusals") {
  CHECK_THROWS_AS(ws::parse("not xml"), ws::Error);
  CHECK_THROWS_AS(ws::parse("<a/>"), ws::Error);
  CHECK_THROWS_AS(
      ws::parse(
          R"(<!DOCTYPE x [<!ENTITY a "aaaa">]><s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body/></s:Envelope>)"),
      ws::Error);
  CHECK_THROWS_AS(ws::parse(R"(<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"/>)"),
                  ws::Error);
  std::string deep = R"(<s:Envelope xmlns:s="http://www.w3.org/2003/05/soap-envelope"><s:Body>)";
  for (int i = 0; i < 100; ++i) deep += "<x>";
  CHECK_THROWS_AS(ws::parse(deep), ws::Error);
  ws::ParseLimits lim;
  lim.max_items = 1;
  CHECK_THROWS_AS(ws::parse(kEnumerateAnswer, lim), ws::Error);
}

TEST_CASE("wsman: the encrypted body frames binary bytes exactly") {
  std::string sealed = "\x10\x00\x00\x00" + std::string(16, '\x01');
  sealed[1] = 0;
  sealed = std::string("\x10\0\0\0", 4) + std::string(16, 'S') + std::string("\r\n--\0\xff", 6);
  const std::string body = ws::encrypted_body(ws::kSpnegoEncrypted, 6, sealed);
  const auto part = ws::parse_encrypted_body(body, ws::kSpnegoEncrypted);
  CHECK(part.original_length == 6);
  CHECK(part.sealed == sealed);
  const auto [sig, msg] = ws::split_ntlm_sealed(part.sealed);
  CHECK(sig == std::string(16, 'S'));
  CHECK(msg == std::string("\r\n--\0\xff", 6));
  CHECK_THROWS_AS(ws::parse_encrypted_body(body, ws::kKerberosEncrypted), ws::Error);
  CHECK_THROWS_AS(ws::parse_encrypted_body(body.substr(0, body.size() - 10), ws::kSpnegoEncrypted),
                  ws::Error);
  CHECK_THROWS_AS(ws::split_ntlm_sealed(std::string("\x11\0\0\0", 4) + std::string(17, 'a')),
                  ws::Error);
  CHECK(ws::encrypted_content_type(ws::kSpnegoEncrypted) ==
        "multipart/encrypted;protocol=\"application/HTTP-SPNEGO-session-encrypted\";boundary="
        "\"Encrypted Boundary\"");
}

TEST_CASE("wsman: base64 both ways") {
  for (std::string s : {"", "a", "ab", "abc", "abcd", "\xff\x00\x10 binary"}) {
    auto d = ws::base64_decode(ws::base64_encode(s));
    REQUIRE(d);
    CHECK(*d == s);
  }
  CHECK(ws::base64_encode("WINHOST01\r\n") == "V0lOSE9TVDAxDQo=");
  CHECK_FALSE(ws::base64_decode("ab$c"));
  CHECK_FALSE(ws::base64_decode("QQ==QQ"));
}

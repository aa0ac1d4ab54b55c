#include "outpost_lib/wsman.hpp"

#include <expat.h>
#include <openssl/rand.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>
#include <memory>

namespace outpost::lib::wsman {

namespace {

constexpr std::string_view kSoap = "http://www.w3.org/2003/05/soap-envelope";
constexpr std::string_view kAddressing = "http://schemas.xmlsoap.org/ws/2004/08/addressing";
constexpr std::string_view kAnonymous =
    "http://schemas.xmlsoap.org/ws/2004/08/addressing/role/anonymous";
constexpr std::string_view kWsman = "http://schemas.dmtf.org/wbem/wsman/1/wsman.xsd";
constexpr std::string_view kEnum = "http://schemas.xmlsoap.org/ws/2004/09/enumeration";
constexpr std::string_view kMsWsman = "http://schemas.microsoft.com/wbem/wsman/1/wsman.xsd";
constexpr std::string_view kShell = "http://schemas.microsoft.com/wbem/wsman/1/windows/shell";
constexpr std::string_view kWql = "http://schemas.microsoft.com/wbem/wsman/1/WQL";
constexpr char kNsSep = '\x1f';  // between a name's namespace URI and its local part

bool iequal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) ==
                  std::tolower(static_cast<unsigned char>(y));
         });
}

// ---- a small tree of the answer --------------------------------------------------------------

struct Node {
  std::string ns, local;
  std::vector<std::pair<std::string, std::string>> attrs;  // "ns<sep>local" or "local"
  std::string text;
  std::vector<std::unique_ptr<Node>> children;
  Node* parent = nullptr;

  const Node* child(std::string_view n, std::string_view name) const {
    for (const auto& c : children)
      if (c->local == name && (n.empty() || c->ns == n)) return c.get();
    return nullptr;
  }
  const std::string* attr(std::string_view name) const {  // by local name, any namespace
    for (const auto& [k, v] : attrs) {
      const std::size_t sep = k.find(kNsSep);
      const std::string_view name_part =
          sep == std::string::npos ? std::string_view(k) : std::string_view(k).substr(sep + 1);
      if (name_part == name) return &v;
    }
    return nullptr;
  }
  // Text of the node and all it holds (a property's value may sit in a child, cim:Datetime).
  std::string all_text() const {
    std::string out = text;
    for (const auto& c : children) out += c->all_text();
    return out;
  }
};

struct Builder {
  std::unique_ptr<Node> root;
  Node* cur = nullptr;
  std::size_t depth = 0, nodes = 0;
  std::size_t max_depth = 64, max_nodes = 0;
  std::string error;
  XML_Parser parser = nullptr;

  void stop(std::string why) {
    if (error.empty()) error = std::move(why);
    XML_StopParser(parser, XML_FALSE);
  }
};

void split_name(const char* name, std::string& ns, std::string& local) {
  const char* sep = std::strchr(name, kNsSep);
  if (sep == nullptr) {
    ns.clear();
    local = name;
  } else {
    ns.assign(name, sep);
    local = sep + 1;
  }
}

void XMLCALL on_start(void* ud, const XML_Char* name, const XML_Char** atts) {
  auto* b = static_cast<Builder*>(ud);
  if (++b->depth > b->max_depth) return b->stop("XML nested too deep");
  if (++b->nodes > b->max_nodes) return b->stop("XML has too many elements");
  auto n = std::make_unique<Node>();
  split_name(name, n->ns, n->local);
  for (std::size_t i = 0; atts[i] != nullptr && atts[i + 1] != nullptr; i += 2)
    n->attrs.emplace_back(atts[i], atts[i + 1]);
  Node* raw = n.get();
  if (b->cur == nullptr) {
    if (b->root) return b->stop("XML has two root elements");
    b->root = std::move(n);
  } else {
    raw->parent = b->cur;
    b->cur->children.push_back(std::move(n));
  }
  b->cur = raw;
}

void XMLCALL on_end(void* ud, const XML_Char*) {
  auto* b = static_cast<Builder*>(ud);
  --b->depth;
  if (b->cur != nullptr) b->cur = b->cur->parent;
}

void XMLCALL on_text(void* ud, const XML_Char* s, int len) {
  auto* b = static_cast<Builder*>(ud);
  if (b->cur != nullptr) b->cur->text.append(s, static_cast<std::size_t>(len));
}

void XMLCALL on_doctype(void* ud, const XML_Char*, const XML_Char*, const XML_Char*, int) {
  static_cast<Builder*>(ud)->stop("XML with a DOCTYPE is refused");
}

void XMLCALL on_entity(void* ud, const XML_Char*, int, const XML_Char*, int, const XML_Char*,
                       const XML_Char*, const XML_Char*, const XML_Char*) {
  static_cast<Builder*>(ud)->stop("XML with entity declarations is refused");
}

std::unique_ptr<Node> parse_tree(std::string_view xml, std::size_t max_depth,
                                 std::size_t max_nodes) {
  Builder b;
  b.max_depth = max_depth;
  b.max_nodes = max_nodes;
  std::unique_ptr<std::remove_pointer_t<XML_Parser>, void (*)(XML_Parser)> p(
      XML_ParserCreateNS("UTF-8", kNsSep), XML_ParserFree);
  if (!p) throw Error("out of memory for the XML parser");
  b.parser = p.get();
  XML_SetUserData(p.get(), &b);
  XML_SetElementHandler(p.get(), on_start, on_end);
  XML_SetCharacterDataHandler(p.get(), on_text);
  XML_SetStartDoctypeDeclHandler(p.get(), on_doctype);
  XML_SetEntityDeclHandler(p.get(), on_entity);
  if (xml.size() > static_cast<std::size_t>(INT32_MAX)) throw Error("XML too large");
  const auto st = XML_Parse(p.get(), xml.data(), static_cast<int>(xml.size()), XML_TRUE);
  if (!b.error.empty()) throw Error(b.error);
  if (st != XML_STATUS_OK)
    throw Error(std::string("not well-formed XML: ") + XML_ErrorString(XML_GetErrorCode(p.get())) +
                " at line " + std::to_string(XML_GetCurrentLineNumber(p.get())));
  if (!b.root) throw Error("no XML element");
  return std::move(b.root);
}

std::string trimmed(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return std::string(s);
}

// "w:QuotaLimit" -> "QuotaLimit" (fault codes are QNames in text).
std::string qname_local(std::string_view q) {
  std::string t = trimmed(q);
  const std::size_t colon = t.rfind(':');
  return colon == std::string::npos ? t : t.substr(colon + 1);
}

Instance to_instance(const Node& n, const ParseLimits& limits) {
  Instance inst;
  inst.class_name = n.local;
  for (const auto& c : n.children) {
    const std::string* nil = c->attr("nil");
    Property* prop = nullptr;
    // An array is the same element repeated, side by side.
    if (!inst.properties.empty() && inst.properties.back().name == c->local)
      prop = &inst.properties.back();
    if (prop == nullptr) {
      if (inst.properties.size() >= limits.max_properties)
        throw Error("instance with more than " + std::to_string(limits.max_properties) +
                    " properties");
      inst.properties.push_back(Property{c->local, {}, false});
      prop = &inst.properties.back();
    }
    if (nil != nullptr && (*nil == "true" || *nil == "1")) {
      prop->null = prop->values.empty();
      continue;
    }
    prop->null = false;
    prop->values.push_back(c->children.empty() ? c->text : trimmed(c->all_text()));
  }
  return inst;
}

void collect_items(const Node* items, Response& r, const ParseLimits& limits) {
  if (items == nullptr) return;
  for (const auto& c : items->children) {
    if (r.items.size() >= limits.max_items)
      throw Error("more than " + std::to_string(limits.max_items) + " items in one answer");
    r.items.push_back(to_instance(*c, limits));
  }
}

std::string selectors_xml(const std::vector<std::pair<std::string, std::string>>& sel) {
  if (sel.empty()) return {};
  std::string out = "<w:SelectorSet>";
  for (const auto& [k, v] : sel)
    out += "<w:Selector Name=\"" + xml_escape(k) + "\">" + xml_escape(v) + "</w:Selector>";
  return out + "</w:SelectorSet>";
}

std::string format_seconds(double s) {
  char buf[32];
  const int64_t ms = static_cast<int64_t>(s * 1000 + 0.5);
  if (ms % 1000 == 0)
    std::snprintf(buf, sizeof buf, "PT%lldS", static_cast<long long>(ms / 1000));
  else
    std::snprintf(buf, sizeof buf, "PT%lld.%03lldS", static_cast<long long>(ms / 1000),
                  static_cast<long long>(ms % 1000));
  return buf;
}

// Windows nests what WMI said inside the WinRM fault: Detail/WSManFault/Message/ProviderFault/
// WSManFault (and, on newer builds, an MSFT_WmiError with error_Code). The innermost code is the
// one that tells an access denied from a missing class; the message of the innermost fault that
// has one is the most specific.
void read_fault_detail(const Node& detail, Fault& fault) {
  std::size_t best_depth = 0;
  bool have_wmi_error = false;
  auto parse_code = [](std::string_view t) -> std::optional<uint32_t> {
    uint64_t v = 0;
    const std::string s = trimmed(t);
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc{} || p != s.data() + s.size() || s.empty() || v > UINT32_MAX)
      return std::nullopt;
    return static_cast<uint32_t>(v);
  };
  // Depth-first, with an explicit stack (the tree's depth is bounded by the parser anyway).
  std::vector<std::pair<const Node*, std::size_t>> stack{{&detail, 0}};
  while (!stack.empty()) {
    auto [n, depth] = stack.back();
    stack.pop_back();
    if (n->local == "WSManFault" && depth >= best_depth && !have_wmi_error) {
      if (const std::string* code = n->attr("Code")) {
        if (auto v = parse_code(*code)) {
          fault.wsman_code = *v;
          best_depth = depth;
        }
      }
      if (const Node* m = n->child({}, "Message")) {
        // The message's own text, without the nested faults it holds.
        std::string own = trimmed(m->text);
        if (own.empty()) own = trimmed(m->all_text());
        if (!own.empty()) fault.message = own;
      }
    } else if (n->local == "error_Code") {  // MSFT_WmiError: WMI's own number
      if (auto v = parse_code(n->text)) {
        fault.wsman_code = *v;
        have_wmi_error = true;
      }
    }
    for (auto it = n->children.rbegin(); it != n->children.rend(); ++it)
      stack.emplace_back(it->get(), depth + 1);
  }
}

}  // namespace

std::string wmi_resource_uri(std::string_view wmi_namespace, std::string_view class_name) {
  std::string ns(wmi_namespace);
  std::replace(ns.begin(), ns.end(), '\\', '/');
  while (!ns.empty() && ns.front() == '/') ns.erase(0, 1);
  std::transform(ns.begin(), ns.end(), ns.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return std::string(kWmiRoot) + ns + "/" + std::string(class_name);
}

std::string xml_escape(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&':
        out += "&amp;";
        break;
      case '<':
        out += "&lt;";
        break;
      case '>':
        out += "&gt;";
        break;
      case '"':
        out += "&quot;";
        break;
      case '\'':
        out += "&apos;";
        break;
      default:
        out += c;
    }
  }
  return out;
}

std::string new_message_id() {
  std::array<unsigned char, 16> u{};
  if (RAND_bytes(u.data(), static_cast<int>(u.size())) != 1) throw Error("no random bytes");
  u[6] = static_cast<unsigned char>((u[6] & 0x0F) | 0x40);
  u[8] = static_cast<unsigned char>((u[8] & 0x3F) | 0x80);
  static constexpr char hex[] = "0123456789ABCDEF";
  std::string out = "uuid:";
  for (std::size_t i = 0; i < u.size(); ++i) {
    if (i == 4 || i == 6 || i == 8 || i == 10) out += '-';
    out += hex[u[i] >> 4];
    out += hex[u[i] & 15];
  }
  return out;
}

std::string envelope(const Header& h, std::string_view body) {
  std::string out;
  out.reserve(1400 + body.size());
  out += "<s:Envelope xmlns:s=\"";
  out.append(kSoap).append("\" xmlns:a=\"").append(kAddressing).append("\" xmlns:w=\"");
  out.append(kWsman).append("\" xmlns:n=\"").append(kEnum).append("\" xmlns:p=\"");
  out.append(kMsWsman).append("\" xmlns:rsp=\"").append(kShell).append("\"><s:Header>");
  out += "<a:To>" + xml_escape(h.to) + "</a:To>";
  out +=
      "<w:ResourceURI s:mustUnderstand=\"true\">" + xml_escape(h.resource_uri) + "</w:ResourceURI>";
  out += "<a:ReplyTo><a:Address s:mustUnderstand=\"true\">";
  out.append(kAnonymous).append("</a:Address></a:ReplyTo>");
  out += "<a:Action s:mustUnderstand=\"true\">" + xml_escape(h.action) + "</a:Action>";
  out += "<w:MaxEnvelopeSize s:mustUnderstand=\"true\">" + std::to_string(h.max_envelope_size) +
         "</w:MaxEnvelopeSize>";
  out += "<a:MessageID>" + (h.message_id.empty() ? new_message_id() : xml_escape(h.message_id)) +
         "</a:MessageID>";
  out += "<w:Locale xml:lang=\"" + xml_escape(h.locale) + "\" s:mustUnderstand=\"false\"/>";
  out += "<p:DataLocale xml:lang=\"" + xml_escape(h.locale) + "\" s:mustUnderstand=\"false\"/>";
  out += "<w:OperationTimeout>" + format_seconds(h.operation_timeout_s) + "</w:OperationTimeout>";
  out += selectors_xml(h.selectors);
  if (!h.options.empty()) {
    out += "<w:OptionSet>";
    for (const auto& [k, v] : h.options)
      out += "<w:Option Name=\"" + xml_escape(k) + "\">" + xml_escape(v) + "</w:Option>";
    out += "</w:OptionSet>";
  }
  out += "</s:Header><s:Body>";
  out += body;
  out += "</s:Body></s:Envelope>";
  return out;
}

std::string enumerate_body(std::string_view wql, uint32_t max_elements) {
  std::string out = "<n:Enumerate><w:OptimizeEnumeration/><w:MaxElements>";
  out += std::to_string(max_elements) + "</w:MaxElements><w:Filter Dialect=\"";
  out.append(kWql).append("\">").append(xml_escape(wql)).append("</w:Filter></n:Enumerate>");
  return out;
}

std::string pull_body(std::string_view context, uint32_t max_elements) {
  return "<n:Pull><n:EnumerationContext>" + xml_escape(context) +
         "</n:EnumerationContext><n:MaxElements>" + std::to_string(max_elements) +
         "</n:MaxElements></n:Pull>";
}

std::string release_body(std::string_view context) {
  return "<n:Release><n:EnumerationContext>" + xml_escape(context) +
         "</n:EnumerationContext></n:Release>";
}

std::string invoke_body(std::string_view resource_uri, std::string_view method,
                        const std::vector<std::pair<std::string, std::string>>& args) {
  const std::string m = xml_escape(method);
  std::string out = "<p:" + m + "_INPUT xmlns:p=\"" + xml_escape(resource_uri) + "\"";
  if (args.empty()) return out + "/>";
  out += ">";
  for (const auto& [k, v] : args)
    out += "<p:" + xml_escape(k) + ">" + xml_escape(v) + "</p:" + xml_escape(k) + ">";
  return out + "</p:" + m + "_INPUT>";
}

std::string shell_create_body() {
  return "<rsp:Shell><rsp:InputStreams>stdin</rsp:InputStreams>"
         "<rsp:OutputStreams>stdout stderr</rsp:OutputStreams></rsp:Shell>";
}

std::string shell_command_body(std::string_view command, const std::vector<std::string>& args) {
  std::string out = "<rsp:CommandLine><rsp:Command>" + xml_escape(command) + "</rsp:Command>";
  for (const auto& a : args) out += "<rsp:Arguments>" + xml_escape(a) + "</rsp:Arguments>";
  return out + "</rsp:CommandLine>";
}

std::string shell_receive_body(std::string_view command_id) {
  return "<rsp:Receive><rsp:DesiredStream CommandId=\"" + xml_escape(command_id) +
         "\">stdout stderr</rsp:DesiredStream></rsp:Receive>";
}

std::string shell_signal_body(std::string_view command_id) {
  return "<rsp:Signal CommandId=\"" + xml_escape(command_id) +
         "\"><rsp:Code>http://schemas.microsoft.com/wbem/wsman/1/windows/shell/signal/"
         "terminate</rsp:Code></rsp:Signal>";
}

outpost_status Fault::status() const {
  // WMI's own error numbers come through as the WSManFault code when WMI refused the work.
  switch (wsman_code) {
    case 5:           // ERROR_ACCESS_DENIED
    case 0x80041003:  // WBEM_E_ACCESS_DENIED
    case 0x80070005:  // E_ACCESSDENIED
      return OUTPOST_E_AUTH;
    case 0x8004100E:  // WBEM_E_INVALID_NAMESPACE
    case 0x80041010:  // WBEM_E_INVALID_CLASS
    case 0x80041002:  // WBEM_E_NOT_FOUND
      return OUTPOST_E_NOT_FOUND;
    case 0x80041017:  // WBEM_E_INVALID_QUERY
    case 0x80041018:  // WBEM_E_INVALID_QUERY_TYPE
      return OUTPOST_E_CONFIG;
    case 0x8004106C:  // WBEM_E_QUOTA_VIOLATION
    case 0x80041006:  // WBEM_E_OUT_OF_MEMORY
      return OUTPOST_E_BUSY;
    default:
      break;
  }
  const std::string& s = subcode;
  if (s == "AccessDenied") return OUTPOST_E_AUTH;
  if (s == "QuotaLimit" || s == "Concurrency" || s == "ConcurrencyLimit") return OUTPOST_E_BUSY;
  if (s == "TimedOut") return OUTPOST_E_TIMEOUT;
  if (s == "InvalidSelectors" || s == "DestinationUnreachable") return OUTPOST_E_NOT_FOUND;
  if (s == "CannotProcessFilter" || s == "FilterDialectRequestedUnavailable" ||
      s == "InvalidOptions" || s == "InvalidParameter" || s == "EncodingLimit" ||
      s == "ActionNotSupported" || s == "FilteringNotSupported" || s == "UnsupportedFeature")
    return OUTPOST_E_CONFIG;
  return OUTPOST_E_UNAVAILABLE;
}

std::string Fault::text() const {
  std::string out = subcode.empty() ? (code.empty() ? "fault" : code) : subcode;
  if (wsman_code != 0) {
    char buf[24];
    if (wsman_code > 0xFFFF)
      std::snprintf(buf, sizeof buf, " (0x%08X)", wsman_code);
    else
      std::snprintf(buf, sizeof buf, " (%u)", wsman_code);
    out += buf;
  }
  const std::string& words = !message.empty() ? message : reason;
  if (!words.empty()) out += ": " + words;
  return out;
}

Response parse(std::string_view xml, const ParseLimits& limits) {
  const std::size_t max_nodes = std::max<std::size_t>(
      1000, (limits.max_items + 1) * std::min<std::size_t>(limits.max_properties + 1, 64) * 4);
  const auto root = parse_tree(xml, limits.max_depth, max_nodes);
  if (root->ns != kSoap || root->local != "Envelope") throw Error("not a SOAP 1.2 envelope");
  Response r;
  if (const Node* h = root->child(kSoap, "Header")) {
    if (const Node* a = h->child(kAddressing, "Action")) r.action = trimmed(a->text);
    if (const Node* a = h->child(kAddressing, "RelatesTo")) r.relates_to = trimmed(a->text);
    if (const Node* sel = h->child(kWsman, "SelectorSet")) {
      for (const auto& c : sel->children)
        if (const std::string* n = c->attr("Name"); n != nullptr && *n == "ShellId")
          r.shell_id = trimmed(c->text);
    }
  }
  const Node* body = root->child(kSoap, "Body");
  if (body == nullptr) throw Error("SOAP envelope without a Body");
  if (const Node* f = body->child(kSoap, "Fault")) {
    Fault fault;
    if (const Node* code = f->child(kSoap, "Code")) {
      if (const Node* v = code->child(kSoap, "Value")) fault.code = qname_local(v->text);
      if (const Node* sub = code->child(kSoap, "Subcode"))
        if (const Node* v = sub->child(kSoap, "Value")) fault.subcode = qname_local(v->text);
    }
    if (const Node* reason = f->child(kSoap, "Reason"))
      if (const Node* t = reason->child(kSoap, "Text")) fault.reason = trimmed(t->text);
    if (const Node* detail = f->child(kSoap, "Detail")) read_fault_detail(*detail, fault);
    r.fault = std::move(fault);
    return r;
  }
  for (const auto& c : body->children) {
    const Node& n = *c;
    if (n.ns == kEnum && (n.local == "EnumerateResponse" || n.local == "PullResponse")) {
      if (const Node* ctx = n.child(kEnum, "EnumerationContext")) r.context = trimmed(ctx->text);
      const Node* items = n.child(kWsman, "Items");
      if (items == nullptr) items = n.child(kEnum, "Items");
      collect_items(items, r, limits);
      r.end_of_sequence =
          n.child(kWsman, "EndOfSequence") != nullptr || n.child(kEnum, "EndOfSequence") != nullptr;
    } else if (n.ns == kShell && n.local == "Shell") {
      if (const Node* id = n.child(kShell, "ShellId")) r.shell_id = trimmed(id->text);
    } else if (n.local == "ResourceCreated") {  // the Create answer of a shell
      if (const Node* ref = n.child(kAddressing, "ReferenceParameters"))
        if (const Node* sel = ref->child(kWsman, "SelectorSet"))
          for (const auto& s : sel->children)
            if (const std::string* nm = s->attr("Name"); nm != nullptr && *nm == "ShellId")
              r.shell_id = trimmed(s->text);
    } else if (n.ns == kShell && n.local == "CommandResponse") {
      if (const Node* id = n.child(kShell, "CommandId")) r.command_id = trimmed(id->text);
    } else if (n.ns == kShell && n.local == "ReceiveResponse") {
      for (const auto& s : n.children) {
        if (s->local == "Stream") {
          const std::string* name = s->attr("Name");
          auto data = base64_decode(trimmed(s->text));
          if (!data) throw Error("shell stream is not base64");
          if (name != nullptr && *name == "stderr")
            r.shell.stderr_data += *data;
          else
            r.shell.stdout_data += *data;
        } else if (s->local == "CommandState") {
          const std::string* state = s->attr("State");
          if (state != nullptr && state->size() >= 4 &&
              state->compare(state->size() - 4, 4, "Done") == 0)
            r.shell.done = true;
          if (const Node* ec = s->child(kShell, "ExitCode")) {
            const std::string t = trimmed(ec->text);
            int64_t v = 0;
            auto [p, e2] = std::from_chars(t.data(), t.data() + t.size(), v);
            if (e2 == std::errc{} && p == t.data() + t.size()) r.shell.exit_code = v;
          }
        }
      }
    } else if (n.local.size() > 7 && n.local.compare(n.local.size() - 7, 7, "_OUTPUT") == 0) {
      r.output = to_instance(n, limits);
    }
  }
  return r;
}

// ---- message encryption ----------------------------------------------------------------------

namespace {
constexpr std::string_view kBoundary = "Encrypted Boundary";
}

std::string encrypted_content_type(std::string_view protocol) {
  return "multipart/encrypted;protocol=\"" + std::string(protocol) + "\";boundary=\"" +
         std::string(kBoundary) + "\"";
}

std::string encrypted_body(std::string_view protocol, std::size_t original_length,
                           std::string_view sealed) {
  std::string out;
  out.reserve(sealed.size() + 256);
  out.append("--").append(kBoundary).append("\r\n\tContent-Type: ").append(protocol);
  out.append("\r\n\tOriginalContent: type=application/soap+xml;charset=UTF-8;Length=");
  out.append(std::to_string(original_length)).append("\r\n--").append(kBoundary);
  out.append("\r\n\tContent-Type: application/octet-stream\r\n").append(sealed);
  out.append("--").append(kBoundary).append("--\r\n");
  return out;
}

EncryptedPart parse_encrypted_body(std::string_view body, std::string_view protocol) {
  const std::string open = "--" + std::string(kBoundary);
  const std::string close = open + "--";
  auto expect_line = [&](std::string_view& b, std::string_view what) -> std::string_view {
    const std::size_t nl = b.find("\r\n");
    if (nl == std::string_view::npos) throw Error("encrypted body: no " + std::string(what));
    std::string_view line = b.substr(0, nl);
    b.remove_prefix(nl + 2);
    while (!line.empty() && (line.front() == '\t' || line.front() == ' ')) line.remove_prefix(1);
    return line;
  };
  std::string_view b = body;
  if (expect_line(b, "boundary") != open) throw Error("encrypted body: no opening boundary");
  const std::string_view ct = expect_line(b, "Content-Type");
  if (!iequal(ct, "Content-Type: " + std::string(protocol)))
    throw Error("encrypted body: part of another protocol: " + std::string(ct.substr(0, 80)));
  const std::string_view oc = expect_line(b, "OriginalContent");
  const std::size_t at = oc.find("Length=");
  if (oc.rfind("OriginalContent:", 0) != 0 || at == std::string_view::npos)
    throw Error("encrypted body: no OriginalContent length");
  std::string_view num = oc.substr(at + 7);
  const std::size_t end = num.find(';');
  num = num.substr(0, end);
  uint64_t len = 0;
  auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), len);
  if (ec != std::errc{} || p != num.data() + num.size() || num.empty())
    throw Error("encrypted body: bad OriginalContent length");
  if (expect_line(b, "second boundary") != open) throw Error("encrypted body: no second boundary");
  if (!iequal(expect_line(b, "octet-stream"), "Content-Type: application/octet-stream"))
    throw Error("encrypted body: second part is not application/octet-stream");
  // The sealed bytes are binary and end right where the closing boundary starts.
  const std::size_t tail = b.rfind(close);
  if (tail == std::string_view::npos) throw Error("encrypted body: no closing boundary");
  EncryptedPart part;
  part.original_length = static_cast<std::size_t>(len);
  part.sealed = b.substr(0, tail);
  return part;
}

std::string ntlm_sealed(std::string_view signature, std::string_view sealed_message) {
  std::string out;
  const auto n = static_cast<uint32_t>(signature.size());
  out.push_back(static_cast<char>(n & 0xFF));
  out.push_back(static_cast<char>((n >> 8) & 0xFF));
  out.push_back(static_cast<char>((n >> 16) & 0xFF));
  out.push_back(static_cast<char>((n >> 24) & 0xFF));
  out.append(signature).append(sealed_message);
  return out;
}

namespace {
std::pair<std::string_view, std::string_view> split_header(std::string_view sealed, uint32_t min,
                                                           uint32_t max) {
  if (sealed.size() < 4) throw Error("sealed part shorter than its length field");
  const auto* u = reinterpret_cast<const unsigned char*>(sealed.data());
  const uint32_t n = u[0] | (u[1] << 8) | (u[2] << 16) | (static_cast<uint32_t>(u[3]) << 24);
  if (n < min || n > max)
    throw Error("sealed part: signature length " + std::to_string(n) + " out of bounds");
  if (sealed.size() < 4 + std::size_t{n}) throw Error("sealed part shorter than its signature");
  return {sealed.substr(4, n), sealed.substr(4 + n)};
}
}  // namespace

std::pair<std::string_view, std::string_view> split_ntlm_sealed(std::string_view sealed) {
  return split_header(sealed, 16, 16);
}

std::pair<std::string_view, std::string_view> split_sealed(std::string_view sealed) {
  return split_header(sealed, 1, 1024);
}

// ---- base64 ------------------------------------------------------------------------------------

std::string base64_encode(std::string_view bytes) {
  static constexpr char tbl[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  std::size_t i = 0;
  const auto* u = reinterpret_cast<const unsigned char*>(bytes.data());
  for (; i + 3 <= bytes.size(); i += 3) {
    const uint32_t v = (u[i] << 16) | (u[i + 1] << 8) | u[i + 2];
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += tbl[(v >> 6) & 63];
    out += tbl[v & 63];
  }
  if (i < bytes.size()) {
    uint32_t v = u[i] << 16;
    if (i + 1 < bytes.size()) v |= u[i + 1] << 8;
    out += tbl[v >> 18];
    out += tbl[(v >> 12) & 63];
    out += i + 1 < bytes.size() ? tbl[(v >> 6) & 63] : '=';
    out += '=';
  }
  return out;
}

std::optional<std::string> base64_decode(std::string_view text) {
  std::string out;
  out.reserve(text.size() / 4 * 3);
  uint32_t acc = 0;
  int bits = 0, pad = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z')
      v = c - 'A';
    else if (c >= 'a' && c <= 'z')
      v = c - 'a' + 26;
    else if (c >= '0' && c <= '9')
      v = c - '0' + 52;
    else if (c == '+')
      v = 62;
    else if (c == '/')
      v = 63;
    else if (c == '=') {
      ++pad;
      continue;
    } else if (c == '\r' || c == '\n' || c == ' ' || c == '\t')
      continue;
    else
      return std::nullopt;
    if (pad != 0) return std::nullopt;  // data after padding
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  if (pad > 2 || bits >= 6) return std::nullopt;
  return out;
}

}  // namespace outpost::lib::wsman

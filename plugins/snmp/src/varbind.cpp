#include "varbind.hpp"

#include <arpa/inet.h>

namespace outpost::snmp::netsnmp {

Value decode(const netsnmp_variable_list* v) {
  Value out;
  switch (v->type) {
    case ASN_INTEGER:
      out.type = Value::Type::kInteger;
      out.number = static_cast<double>(*v->val.integer);
      break;
    case ASN_GAUGE:  // == ASN_UNSIGNED
    case ASN_UINTEGER:
      out.type = Value::Type::kUnsigned;
      out.number = static_cast<double>(static_cast<unsigned long>(*v->val.integer) & 0xFFFFFFFFul);
      break;
    case ASN_COUNTER:
      out.type = Value::Type::kCounter32;
      out.number = static_cast<double>(static_cast<unsigned long>(*v->val.integer) & 0xFFFFFFFFul);
      break;
    case ASN_TIMETICKS:
      out.type = Value::Type::kTimeTicks;
      out.number = static_cast<double>(static_cast<unsigned long>(*v->val.integer) & 0xFFFFFFFFul);
      break;
    case ASN_COUNTER64:
#ifdef NETSNMP_WITH_OPAQUE_SPECIAL_TYPES
    case ASN_OPAQUE_COUNTER64:
    case ASN_OPAQUE_U64:
#endif
    {
      const uint64_t u = (static_cast<uint64_t>(v->val.counter64->high) << 32) |
                         (v->val.counter64->low & 0xFFFFFFFFul);
      out.type = Value::Type::kCounter64;
      out.number = static_cast<double>(u);
      out.text = std::to_string(u);  // exact, for diagnostics; metrics use the number
      break;
    }
#ifdef NETSNMP_WITH_OPAQUE_SPECIAL_TYPES
    case ASN_OPAQUE_I64:
      out.type = Value::Type::kInteger;
      out.number = static_cast<double>(
          static_cast<int64_t>((static_cast<uint64_t>(v->val.counter64->high) << 32) |
                               (v->val.counter64->low & 0xFFFFFFFFul)));
      break;
    case ASN_OPAQUE_FLOAT:
      out.type = Value::Type::kFloat;
      out.number = static_cast<double>(*v->val.floatVal);
      break;
    case ASN_OPAQUE_DOUBLE:
      out.type = Value::Type::kFloat;
      out.number = *v->val.doubleVal;
      break;
#endif
    case ASN_OCTET_STR:
      out.type = Value::Type::kOctets;
      if (v->val.string != nullptr)
        out.text.assign(reinterpret_cast<const char*>(v->val.string), v->val_len);
      break;
    case ASN_IPADDRESS:
      out.type = Value::Type::kIpAddress;
      if (v->val_len == 4 && v->val.string != nullptr) {
        char buf[INET_ADDRSTRLEN];
        ::inet_ntop(AF_INET, v->val.string, buf, sizeof buf);
        out.text = buf;
      }
      break;
    case ASN_OBJECT_ID: {
      out.type = Value::Type::kOid;
      Oid o;
      const std::size_t n = v->val_len / sizeof(oid);
      for (std::size_t i = 0; i < n; ++i) o.push_back(static_cast<uint32_t>(v->val.objid[i]));
      out.text = to_string(o);
      break;
    }
    case ASN_NULL:
      out.type = Value::Type::kNull;
      break;
    case SNMP_NOSUCHOBJECT:
      out.type = Value::Type::kNoSuchObject;
      break;
    case SNMP_NOSUCHINSTANCE:
      out.type = Value::Type::kNoSuchInstance;
      break;
    case SNMP_ENDOFMIBVIEW:
      out.type = Value::Type::kEndOfMibView;
      break;
    default:
      out.type = Value::Type::kOther;
      if (v->val.string != nullptr)
        out.text.assign(reinterpret_cast<const char*>(v->val.string), v->val_len);
      break;
  }
  return out;
}

Response decode(const netsnmp_pdu* pdu) {
  Response r;
  r.error_status = pdu->errstat;
  r.error_index = pdu->errindex;
  for (const netsnmp_variable_list* v = pdu->variables; v != nullptr; v = v->next_variable) {
    VarBind vb;
    vb.oid.reserve(v->name_length);
    for (std::size_t i = 0; i < v->name_length; ++i)
      vb.oid.push_back(static_cast<uint32_t>(v->name[i]));
    vb.value = decode(v);
    r.varbinds.push_back(std::move(vb));
  }
  return r;
}

}  // namespace outpost::snmp::netsnmp

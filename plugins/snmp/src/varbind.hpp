// net-snmp's decoded PDUs into the library-free values the Collector and Probe read.
#pragma once

#include "collector.hpp"
#include "library.hpp"

namespace outpost::snmp::netsnmp {

Value decode(const netsnmp_variable_list* v);
Response decode(const netsnmp_pdu* pdu);

}  // namespace outpost::snmp::netsnmp

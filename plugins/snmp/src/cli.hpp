// `outpost snmp get|walk`: the plugin's subcommand, net-snmp's options read into one poll.
#pragma once

#include <outpost/sdk.hpp>
#include <span>
#include <string_view>

namespace outpost::snmp {

outpost::CommandPlan command(std::span<const std::string_view> args);

}  // namespace outpost::snmp

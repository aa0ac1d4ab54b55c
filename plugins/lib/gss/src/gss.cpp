#include "outpost_lib/gss.hpp"

#include <gssapi/gssapi.h>
#include <gssapi/gssapi_ext.h>
#include <gssapi/gssapi_krb5.h>
#include <krb5.h>

#include <cstring>

namespace outpost::lib::gss {

namespace {

std::string status_text(OM_uint32 code, int type) {
  std::string out;
  OM_uint32 ctx = 0, minor = 0;
  do {
    gss_buffer_desc buf{0, nullptr};
    if (gss_display_status(&minor, code, type, const_cast<gss_OID>(gss_mech_krb5), &ctx, &buf) !=
        GSS_S_COMPLETE)
      break;
    if (!out.empty()) out += "; ";
    out.append(static_cast<const char*>(buf.value), buf.length);
    gss_release_buffer(&minor, &buf);
  } while (ctx != 0);
  return out;
}

// The class of a failure, from the Kerberos error in the minor status.
outpost_status classify(OM_uint32 major, OM_uint32 minor) {
  switch (static_cast<krb5_error_code>(minor)) {
    case KRB5KDC_ERR_PREAUTH_FAILED:
    case KRB5KRB_AP_ERR_BAD_INTEGRITY:
    case KRB5KDC_ERR_C_PRINCIPAL_UNKNOWN:
    case KRB5KDC_ERR_CLIENT_REVOKED:
    case KRB5KDC_ERR_KEY_EXP:
    case KRB5KDC_ERR_POLICY:
      return OUTPOST_E_AUTH;
    case KRB5KDC_ERR_S_PRINCIPAL_UNKNOWN:
    case KRB5_REALM_UNKNOWN:
    case KRB5_CONFIG_NODEFREALM:
    case KRB5_PARSE_MALFORMED:
      return OUTPOST_E_CONFIG;
    case KRB5_KDC_UNREACH:
    case KRB5_REALM_CANT_RESOLVE:
      return OUTPOST_E_UNAVAILABLE;
    case KRB5KRB_AP_ERR_SKEW:
      return OUTPOST_E_AUTH;
    default:
      break;
  }
  if (GSS_ROUTINE_ERROR(major) == GSS_S_DEFECTIVE_TOKEN ||
      GSS_ROUTINE_ERROR(major) == GSS_S_BAD_SIG || GSS_ROUTINE_ERROR(major) == GSS_S_BAD_MIC)
    return OUTPOST_E_AUTH;
  return OUTPOST_E_INTERNAL;
}

[[noreturn]] void fail(const std::string& what, OM_uint32 major, OM_uint32 minor) {
  std::string text = what + ": " + status_text(major, GSS_C_GSS_CODE);
  const std::string m = status_text(minor, GSS_C_MECH_CODE);
  if (!m.empty()) text += " (" + m + ", code " + std::to_string(static_cast<int32_t>(minor)) + ")";
  throw Error(classify(major, minor), text);
}

gss_name_t import_name(const std::string& n, gss_OID type) {
  OM_uint32 minor = 0;
  gss_buffer_desc buf{n.size(), const_cast<char*>(n.data())};
  gss_name_t name = GSS_C_NO_NAME;
  const OM_uint32 major = gss_import_name(&minor, &buf, type, &name);
  if (GSS_ERROR(major)) fail("name '" + n + "'", major, minor);
  return name;
}

}  // namespace

std::shared_ptr<Credential> Credential::acquire(const std::string& principal,
                                                const std::string& password) {
  std::shared_ptr<Credential> c(new Credential());
  c->principal_ = principal;
  gss_name_t name = import_name(principal, GSS_C_NT_USER_NAME);
  gss_buffer_desc pw{password.size(), const_cast<char*>(password.data())};
  gss_OID_set_desc mechs{1, const_cast<gss_OID>(gss_mech_krb5)};
  OM_uint32 minor = 0;
  gss_cred_id_t cred = GSS_C_NO_CREDENTIAL;
  const OM_uint32 major = gss_acquire_cred_with_password(
      &minor, name, &pw, GSS_C_INDEFINITE, &mechs, GSS_C_INITIATE, &cred, nullptr, nullptr);
  OM_uint32 m2 = 0;
  gss_release_name(&m2, &name);
  if (GSS_ERROR(major)) fail("Kerberos login of " + principal, major, minor);
  c->cred_ = cred;
  return c;
}

Credential::~Credential() {
  OM_uint32 minor = 0;
  auto cred = static_cast<gss_cred_id_t>(cred_);
  if (cred != GSS_C_NO_CREDENTIAL) gss_release_cred(&minor, &cred);
}

uint32_t Credential::lifetime_left() const {
  OM_uint32 minor = 0, life = 0;
  if (GSS_ERROR(gss_inquire_cred(&minor, static_cast<gss_cred_id_t>(cred_), nullptr, &life, nullptr,
                                 nullptr)))
    return 0;
  return life;
}

Context::Context(std::shared_ptr<Credential> cred, std::string service)
    : cred_(std::move(cred)), service_(std::move(service)) {
  target_ = import_name(service_, GSS_C_NT_HOSTBASED_SERVICE);
}

Context::~Context() {
  OM_uint32 minor = 0;
  auto ctx = static_cast<gss_ctx_id_t>(ctx_);
  if (ctx != GSS_C_NO_CONTEXT) gss_delete_sec_context(&minor, &ctx, GSS_C_NO_BUFFER);
  auto name = static_cast<gss_name_t>(target_);
  if (name != GSS_C_NO_NAME) gss_release_name(&minor, &name);
}

namespace {

// One gss_init_sec_context step; returns the output token.
std::vector<uint8_t> init_step(void*& ctx_, void* cred, void* target, gss_buffer_t input,
                               bool& complete, const std::string& service) {
  OM_uint32 minor = 0, flags = 0;
  auto ctx = static_cast<gss_ctx_id_t>(ctx_);
  gss_buffer_desc out{0, nullptr};
  const OM_uint32 major = gss_init_sec_context(
      &minor, static_cast<gss_cred_id_t>(cred), &ctx, static_cast<gss_name_t>(target),
      const_cast<gss_OID>(gss_mech_krb5),
      GSS_C_MUTUAL_FLAG | GSS_C_SEQUENCE_FLAG | GSS_C_CONF_FLAG | GSS_C_INTEG_FLAG, 0,
      GSS_C_NO_CHANNEL_BINDINGS, input, nullptr, &out, &flags, nullptr);
  ctx_ = ctx;
  std::vector<uint8_t> token(static_cast<const uint8_t*>(out.value),
                             static_cast<const uint8_t*>(out.value) + out.length);
  OM_uint32 release_minor = 0;  // keeps `minor`, the reason of a failure
  gss_release_buffer(&release_minor, &out);
  if (GSS_ERROR(major)) fail("Kerberos context for " + service, major, minor);
  complete = major == GSS_S_COMPLETE;
  if (complete && (flags & GSS_C_CONF_FLAG) == 0)
    throw Error(OUTPOST_E_AUTH, "Kerberos context for " + service + " without confidentiality");
  return token;
}

}  // namespace

std::vector<uint8_t> Context::initial_token() {
  bool complete = false;
  auto t = init_step(ctx_, cred_->cred_, target_, GSS_C_NO_BUFFER, complete, service_);
  established_ = complete;
  return t;
}

bool Context::step(std::span<const uint8_t> token) {
  if (established_) return true;
  gss_buffer_desc in{token.size(), const_cast<uint8_t*>(token.data())};
  bool complete = false;
  auto out = init_step(ctx_, cred_->cred_, target_, &in, complete, service_);
  established_ = complete;
  return established_;
}

std::pair<std::string, std::string> Context::wrap(std::string_view plain) {
  if (!established_) throw Error(OUTPOST_E_INTERNAL, "wrap before the context is established");
  std::string data(plain);
  gss_iov_buffer_desc iov[3];
  iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER | GSS_IOV_BUFFER_FLAG_ALLOCATE;
  iov[0].buffer = {0, nullptr};
  iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
  iov[1].buffer = {data.size(), data.data()};
  iov[2].type = GSS_IOV_BUFFER_TYPE_PADDING | GSS_IOV_BUFFER_FLAG_ALLOCATE;
  iov[2].buffer = {0, nullptr};
  OM_uint32 minor = 0;
  int conf = 0;
  const OM_uint32 major =
      gss_wrap_iov(&minor, static_cast<gss_ctx_id_t>(ctx_), 1, GSS_C_QOP_DEFAULT, &conf, iov, 3);
  if (GSS_ERROR(major)) {
    OM_uint32 release_minor = 0;
    gss_release_iov_buffer(&release_minor, iov, 3);
    fail("Kerberos wrap", major, minor);
  }
  std::string header(static_cast<const char*>(iov[0].buffer.value), iov[0].buffer.length);
  data.append(static_cast<const char*>(iov[2].buffer.value), iov[2].buffer.length);
  gss_release_iov_buffer(&minor, iov, 3);
  if (conf == 0) throw Error(OUTPOST_E_AUTH, "Kerberos wrap without confidentiality");
  return {std::move(header), std::move(data)};
}

std::string Context::unwrap(std::string_view header, std::string_view sealed) {
  if (!established_) throw Error(OUTPOST_E_INTERNAL, "unwrap before the context is established");
  std::string hdr(header), data(sealed);
  gss_iov_buffer_desc iov[2];
  iov[0].type = GSS_IOV_BUFFER_TYPE_HEADER;
  iov[0].buffer = {hdr.size(), hdr.data()};
  iov[1].type = GSS_IOV_BUFFER_TYPE_DATA;
  iov[1].buffer = {data.size(), data.data()};
  OM_uint32 minor = 0;
  int conf = 0;
  gss_qop_t qop = 0;
  const OM_uint32 major =
      gss_unwrap_iov(&minor, static_cast<gss_ctx_id_t>(ctx_), &conf, &qop, iov, 2);
  if (GSS_ERROR(major)) fail("Kerberos unwrap", major, minor);
  if (conf == 0) throw Error(OUTPOST_E_AUTH, "a Kerberos message without confidentiality");
  data.resize(iov[1].buffer.length);
  return data;
}

}  // namespace outpost::lib::gss

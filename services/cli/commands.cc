#include "services/cli/commands.h"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>

#include "absl/status/status.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "absl/time/clock.h"
#include "certplane/gateway/v1/gateway.grpc.pb.h"
#include "certplane/inventory/v1/inventory.grpc.pb.h"
#include "certplane/issuance/v1/issuance.grpc.pb.h"
#include "certplane/vault/v1/vault.grpc.pb.h"
#include "google/protobuf/util/time_util.h"
#include "grpcpp/grpcpp.h"
#include "libs/audit/audit_log.h"
#include "libs/status/grpc_status.h"
#include "services/cli/args.h"
#include "services/cli/output.h"
#include "services/gateway/audit_proto.h"

namespace certplane::cli {
namespace {

namespace inv = ::certplane::inventory::v1;
namespace iss = ::certplane::issuance::v1;
namespace vlt = ::certplane::vault::v1;
namespace gw = ::certplane::gateway::v1;

constexpr int kUsage = 2;

const std::set<std::string> kBooleans = {
    "insecure", "dry-run",    "wait",      "all",           "show-deleted",
    "legacy",   "auto-renew", "reuse-key", "show-inactive", "failing-only"};

constexpr char kUsageText[] =
    R"(usage: certplane [flags] <noun> <verb> [arguments] [flags]

  cert import FILE... [--owner TEAM] [--env ENV]... [--password P] [--dry-run]
  cert list [--filter F] [--expiring-within DAYS] [--order-by F] [--all]
  cert get ID                     cert versions ID
  cert export ID --format pem|fullchain|der|p7b|pkcs12|nginx
                 [--password P] [--legacy] [--out PATH]
  cert update ID [--owner T] [--env E]... [--tag K=V]... [--display-name N]
                 [--auto-renew=true|false] [--renew-before-days N]
  cert delete ID                  cert stats [--filter F]
  order create --cn NAME [--san NAME]... --owner TEAM [--issuer ID] [--env E]
               [--key-type ecdsa-p256|ecdsa-p384|rsa-2048|rsa-3072|rsa-4096|ed25519]
               [--validity-days N] [--auto-renew] [--wait]
  order list [--filter F] [--state S]      order get ID
  order approve ID    order reject ID [--comment C]    order cancel ID
  order upload ID FILE            order csr ID [--out FILE]
  issuer list                     issuer get ID
  ca crl ISSUER [--out FILE]
  key list [--filter F]           key get ID
  token create [--principal P] [--role ROLE:TEAM]... [--ttl 90d] [--description D]
  token list [--show-inactive]    token revoke ID
  audit list [--filter F] [--from INDEX]
  audit verify [--public-key FILE]
  whoami

flags: --server HOST:PORT (CERTPLANE_SERVER), --token T (CERTPLANE_TOKEN),
       --token-file F, --ca-file F, --insecure, -o table|json|yaml, --timeout 60s
)";

// A failure with its exit code.
struct Failure {
  int exit_code;
  std::string message;
};

int ExitCodeFor(const absl::Status& s) {
  switch (s.code()) {
    case absl::StatusCode::kOk:
      return 0;
    case absl::StatusCode::kNotFound:
      return 3;
    case absl::StatusCode::kUnauthenticated:
    case absl::StatusCode::kPermissionDenied:
      return 4;
    case absl::StatusCode::kUnavailable:
    case absl::StatusCode::kDeadlineExceeded:
      return 5;
    case absl::StatusCode::kDataLoss:
      return 6;
    default:
      return 1;
  }
}

class Cli {
 public:
  Cli(Args args, Settings settings, std::ostream& out, std::ostream& err)
      : args_(std::move(args)),
        settings_(std::move(settings)),
        out_(out),
        err_(err) {}

  absl::Status Init() {
    absl::StatusOr<Format> f = ParseFormat(settings_.output);
    if (!f.ok()) return f.status();
    format_ = *f;
    std::shared_ptr<grpc::ChannelCredentials> creds;
    if (settings_.insecure) {
      creds = grpc::InsecureChannelCredentials();
    } else {
      grpc::SslCredentialsOptions ssl;
      if (!settings_.ca_file.empty()) {
        std::ifstream in(settings_.ca_file);
        if (!in) {
          return absl::InvalidArgumentError(
              absl::StrCat("cannot read --ca-file ", settings_.ca_file));
        }
        std::stringstream text;
        text << in.rdbuf();
        ssl.pem_root_certs = text.str();
      }
      creds = grpc::SslCredentials(ssl);
    }
    channel_ = grpc::CreateChannel(settings_.server, creds);
    return absl::OkStatus();
  }

  int Dispatch();

 private:
  using Handler = std::function<absl::Status()>;

  std::unique_ptr<grpc::ClientContext> Context() {
    auto context = std::make_unique<grpc::ClientContext>();
    context->set_deadline(absl::ToChronoTime(absl::Now() + settings_.timeout));
    if (!settings_.token.empty()) {
      context->AddMetadata("authorization", "Bearer " + settings_.token);
    }
    return context;
  }

  // Runs one typed call on a fresh stub.
  template <typename Service, typename Request, typename Response>
  absl::Status Rpc(grpc::Status (Service::Stub::*method)(grpc::ClientContext*,
                                                         const Request&,
                                                         Response*),
                   const Request& request, Response* response) {
    auto stub = Service::NewStub(channel_);
    auto context = Context();
    return FromGrpcStatus(((*stub).*method)(context.get(), request, response));
  }

  absl::Status Usage(absl::string_view message) {
    usage_error_ = true;
    return absl::InvalidArgumentError(message);
  }
  absl::Status Need(size_t positional, absl::string_view what) {
    if (args_.positional.size() < positional + 2) {
      return Usage(absl::StrCat("missing ", what));
    }
    return absl::OkStatus();
  }
  const std::string& Arg(size_t i) const { return args_.positional[i + 2]; }
  absl::Status Flags(std::set<std::string> allowed) {
    absl::Status s = CheckFlags(args_, allowed);
    if (!s.ok()) usage_error_ = true;
    return s;
  }

  static std::string Named(absl::string_view collection, absl::string_view id) {
    if (absl::StartsWith(id, absl::StrCat(collection, "/"))) {
      return std::string(id);
    }
    return absl::StrCat(collection, "/", id);
  }

  absl::StatusOr<std::string> ReadFile(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) {
      usage_error_ = true;
      return absl::InvalidArgumentError(absl::StrCat("cannot read ", path));
    }
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  absl::Status WriteFile(const std::string& path, const std::string& data,
                         bool sensitive) {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    if (!f)
      return absl::InvalidArgumentError(absl::StrCat("cannot write ", path));
    if (sensitive) ::chmod(path.c_str(), 0600);
    f << data;
    f.close();
    if (!f)
      return absl::InternalError(absl::StrCat("writing ", path, " failed"));
    return absl::OkStatus();
  }

  // Commands.
  absl::Status CertImport();
  absl::Status CertList();
  absl::Status CertGet();
  absl::Status CertVersions();
  absl::Status CertExport();
  absl::Status CertUpdate();
  absl::Status CertDelete();
  absl::Status CertStats();
  absl::Status OrderCreate();
  absl::Status OrderList();
  absl::Status OrderGet();
  absl::Status OrderDecide(const std::string& verb);
  absl::Status OrderUpload();
  absl::Status OrderCsr();
  absl::Status IssuerList();
  absl::Status IssuerGet();
  absl::Status CaCrl();
  absl::Status KeyList();
  absl::Status KeyGet();
  absl::Status TokenCreate();
  absl::Status TokenList();
  absl::Status TokenRevoke();
  absl::Status AuditList();
  absl::Status AuditVerify();
  absl::Status WhoAmI();

  void PrintOrder(const iss::Order& order) {
    PrintObject(order, format_, OrderColumns(), out_);
  }
  static std::vector<Column> CertColumns() {
    return {{"ID", "certificateId"},
            {"NAME", "displayName"},
            {"OWNER", "owner"},
            {"ENV", "environments"},
            {"STATUS", "currentVersion.status"},
            {"NOT AFTER", "currentVersion.details.notAfter"},
            {"ISSUER", "currentVersion.details.issuer"}};
  }
  static std::vector<Column> OrderColumns() {
    return {{"ID", "orderId"},
            {"STATE", "state"},
            {"SUBJECT", "subject"},
            {"OWNER", "owner"},
            {"ISSUER", "issuer"},
            {"REQUESTER", "requester"},
            {"CERTIFICATE", "certificate"}};
  }

  Args args_;
  Settings settings_;
  std::ostream& out_;
  std::ostream& err_;
  Format format_ = Format::kTable;
  std::shared_ptr<grpc::Channel> channel_;
  bool usage_error_ = false;
};

int Cli::Dispatch() {
  const std::vector<std::string>& p = args_.positional;
  std::string noun = p.empty() ? "" : p[0];
  std::string verb = p.size() < 2 ? "" : p[1];
  if (noun == "whoami") verb = "-";
  const std::map<std::pair<std::string, std::string>, Handler> table = {
      {{"cert", "import"}, [this] { return CertImport(); }},
      {{"cert", "list"}, [this] { return CertList(); }},
      {{"cert", "get"}, [this] { return CertGet(); }},
      {{"cert", "versions"}, [this] { return CertVersions(); }},
      {{"cert", "export"}, [this] { return CertExport(); }},
      {{"cert", "update"}, [this] { return CertUpdate(); }},
      {{"cert", "delete"}, [this] { return CertDelete(); }},
      {{"cert", "stats"}, [this] { return CertStats(); }},
      {{"order", "create"}, [this] { return OrderCreate(); }},
      {{"order", "list"}, [this] { return OrderList(); }},
      {{"order", "get"}, [this] { return OrderGet(); }},
      {{"order", "approve"}, [this] { return OrderDecide("approve"); }},
      {{"order", "reject"}, [this] { return OrderDecide("reject"); }},
      {{"order", "cancel"}, [this] { return OrderDecide("cancel"); }},
      {{"order", "upload"}, [this] { return OrderUpload(); }},
      {{"order", "csr"}, [this] { return OrderCsr(); }},
      {{"issuer", "list"}, [this] { return IssuerList(); }},
      {{"issuer", "get"}, [this] { return IssuerGet(); }},
      {{"ca", "crl"}, [this] { return CaCrl(); }},
      {{"key", "list"}, [this] { return KeyList(); }},
      {{"key", "get"}, [this] { return KeyGet(); }},
      {{"token", "create"}, [this] { return TokenCreate(); }},
      {{"token", "list"}, [this] { return TokenList(); }},
      {{"token", "revoke"}, [this] { return TokenRevoke(); }},
      {{"audit", "list"}, [this] { return AuditList(); }},
      {{"audit", "verify"}, [this] { return AuditVerify(); }},
      {{"whoami", "-"}, [this] { return WhoAmI(); }},
  };
  auto it = table.find({noun, verb});
  if (it == table.end()) {
    err_ << (noun.empty() ? std::string("error: no command\n")
                          : absl::StrCat("error: unknown command \"", noun, " ",
                                         verb, "\"\n"))
         << kUsageText;
    return kUsage;
  }
  absl::Status s = it->second();
  if (s.ok()) return 0;
  err_ << "error: " << absl::AsciiStrToLower(absl::StatusCodeToString(s.code()))
       << ": " << s.message() << "\n";
  if (usage_error_) return kUsage;
  return ExitCodeFor(s);
}

// ---------------------------------------------------------------- certs

absl::Status Cli::CertImport() {
  if (absl::Status s = Flags({"owner", "env", "password", "dry-run", "tag"});
      !s.ok()) {
    return s;
  }
  if (args_.positional.size() < 3) return Usage("cert import needs FILE...");
  inv::ImportCertificatesRequest request;
  request.set_owner(args_.Get("owner"));
  for (const std::string& e : args_.All("env")) request.add_environments(e);
  for (const std::string& t : args_.All("tag")) {
    std::pair<std::string, std::string> kv = absl::StrSplit(t, '=');
    (*request.mutable_tags())[kv.first] = kv.second;
  }
  request.set_dry_run(args_.Bool("dry-run"));
  for (size_t i = 2; i < args_.positional.size(); ++i) {
    absl::StatusOr<std::string> data = ReadFile(args_.positional[i]);
    if (!data.ok()) return data.status();
    inv::ImportFile* file = request.add_files();
    file->set_filename(
        std::filesystem::path(args_.positional[i]).filename().string());
    file->set_data(*data);
    file->set_password(args_.Get("password"));
  }
  inv::ImportCertificatesResponse response;
  if (absl::Status s = Rpc<inv::InventoryService>(
          &inv::InventoryService::Stub::ImportCertificates, request, &response);
      !s.ok()) {
    return s;
  }
  if (format_ != Format::kTable) {
    PrintObject(response, format_, {}, out_);
  } else {
    std::vector<std::vector<std::string>> rows;
    out_ << "FILE  OUTCOME  CERTIFICATE  SUBJECT  ERROR\n";
    for (const inv::FileResult& f : response.files()) {
      if (!f.ok()) {
        out_ << f.filename() << "  FAILED  -  -  " << f.error() << "\n";
        continue;
      }
      for (const inv::CertificateResult& c : f.certificates()) {
        std::string outcome(absl::StripPrefix(
            inv::ImportOutcome_Name(c.outcome()), "IMPORT_OUTCOME_"));
        out_ << f.filename() << "  " << outcome << "  "
             << (c.certificate().empty() ? "-" : c.certificate()) << "  "
             << c.details().subject().display() << "  " << c.error() << "\n";
      }
    }
    out_ << response.imported_count() << " imported, "
         << response.already_present_count() << " already present, "
         << response.failed_count() << " failed\n";
  }
  if (response.failed_count() > 0) {
    return absl::InvalidArgumentError(absl::StrCat(
        response.failed_count(), " item(s) could not be imported"));
  }
  return absl::OkStatus();
}

absl::Status Cli::CertList() {
  if (absl::Status s = Flags({"filter", "expiring-within", "order-by", "all",
                              "page-size", "show-deleted"});
      !s.ok()) {
    return s;
  }
  std::vector<std::string> filters;
  if (args_.Has("filter")) filters.push_back(args_.Get("filter"));
  if (args_.Has("expiring-within")) {
    int days = 0;
    if (!absl::SimpleAtoi(args_.Get("expiring-within"), &days) || days < 0) {
      return Usage("--expiring-within needs a number of days");
    }
    filters.push_back(absl::StrCat("days_to_expiry <= ", days));
  }
  inv::ListCertificatesRequest request;
  std::string filter;
  for (const std::string& f : filters) {
    filter = filter.empty() ? f : absl::StrCat("(", filter, ") AND (", f, ")");
  }
  request.set_filter(filter);
  request.set_order_by(args_.Get("order-by"));
  request.set_show_deleted(args_.Bool("show-deleted"));
  int page_size = 100;
  if (args_.Has("page-size") &&
      !absl::SimpleAtoi(args_.Get("page-size"), &page_size)) {
    return Usage("--page-size needs a number");
  }
  request.set_page_size(page_size);
  inv::ListCertificatesResponse all;
  while (true) {
    inv::ListCertificatesResponse page;
    if (absl::Status s = Rpc<inv::InventoryService>(
            &inv::InventoryService::Stub::ListCertificates, request, &page);
        !s.ok()) {
      return s;
    }
    for (auto& c : *page.mutable_certificates()) {
      *all.add_certificates() = std::move(c);
    }
    all.set_next_page_token(page.next_page_token());
    if (!args_.Bool("all") || page.next_page_token().empty()) break;
    request.set_page_token(page.next_page_token());
  }
  PrintList(all, "certificates", format_, CertColumns(), out_);
  return absl::OkStatus();
}

absl::Status Cli::CertGet() {
  if (absl::Status s = Flags({}); !s.ok()) return s;
  if (absl::Status s = Need(1, "the certificate ID"); !s.ok()) return s;
  inv::GetCertificateRequest request;
  request.set_name(Named("certificates", Arg(0)));
  inv::ManagedCertificate response;
  if (absl::Status s = Rpc<inv::InventoryService>(
          &inv::InventoryService::Stub::GetCertificate, request, &response);
      !s.ok()) {
    return s;
  }
  if (format_ == Format::kTable) {
    // The table view of one certificate: its details, one per line.
    const auto& d = response.current_version().details();
    auto line = [&](const std::string& k, const std::string& v) {
      out_ << k << ":" << std::string(std::max<int>(1, 20 - k.size()), ' ') << v
           << "\n";
    };
    line("Name", response.name());
    line("Display name", response.display_name());
    line("Owner", response.owner());
    line("Environments", absl::StrJoin(response.environments(), ","));
    line("Source", inv::Source_Name(response.source()));
    line("Version", absl::StrCat(response.current_version().version(), " of ",
                                 response.version_count()));
    line("Status",
         inv::VersionStatus_Name(response.current_version().status()));
    line("Subject", d.subject().display());
    line("Issuer", d.issuer().display());
    line("Serial", d.serial_hex());
    line("Not before",
         google::protobuf::util::TimeUtil::ToString(d.not_before()));
    line("Not after",
         google::protobuf::util::TimeUtil::ToString(d.not_after()));
    std::vector<std::string> sans;
    for (const auto& san : d.sans()) {
      sans.push_back(absl::StrCat(
          common::v1::SubjectAltName::Type_Name(san.type()), ":", san.value()));
    }
    line("SANs", absl::StrJoin(sans, ", "));
    line("Key", absl::StrCat(common::v1::KeyAlgorithm_Name(d.key().algorithm()),
                             " ", d.key().bits()));
    line("Signature", d.signature_algorithm());
    line("Private key", response.current_version().key_name().empty()
                            ? "(not in the vault)"
                            : response.current_version().key_name());
    line("Chain complete",
         response.current_version().chain_complete() ? "yes" : "no");
    return absl::OkStatus();
  }
  PrintObject(response, format_, {}, out_);
  return absl::OkStatus();
}

absl::Status Cli::CertVersions() {
  if (absl::Status s = Flags({}); !s.ok()) return s;
  if (absl::Status s = Need(1, "the certificate ID"); !s.ok()) return s;
  inv::ListCertificateVersionsRequest request;
  request.set_parent(Named("certificates", Arg(0)));
  inv::ListCertificateVersionsResponse response;
  if (absl::Status s = Rpc<inv::InventoryService>(
          &inv::InventoryService::Stub::ListCertificateVersions, request,
          &response);
      !s.ok()) {
    return s;
  }
  PrintList(response, "versions", format_,
            {{"VERSION", "version"},
             {"STATUS", "status"},
             {"SERIAL", "details.serialHex"},
             {"NOT AFTER", "details.notAfter"},
             {"ORIGIN", "origin"}},
            out_);
  return absl::OkStatus();
}

absl::Status Cli::CertExport() {
  if (absl::Status s = Flags({"format", "password", "legacy", "out"});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Need(1, "the certificate ID"); !s.ok()) return s;
  static const std::map<std::string, inv::ExportFormat> kFormats = {
      {"pem", inv::PEM},           {"fullchain", inv::FULLCHAIN_PEM},
      {"der", inv::DER},           {"p7b", inv::PKCS7},
      {"pkcs7", inv::PKCS7},       {"pkcs12", inv::PKCS12},
      {"p12", inv::PKCS12},        {"pfx", inv::PKCS12},
      {"nginx", inv::NGINX_BUNDLE}};
  auto f = kFormats.find(args_.Get("format", "pem"));
  if (f == kFormats.end()) {
    return Usage(absl::StrCat("--format \"", args_.Get("format"),
                              "\" is not pem, fullchain, der, p7b, pkcs12 or "
                              "nginx"));
  }
  inv::ExportCertificateRequest request;
  request.set_name(absl::StrContains(Arg(0), "/") &&
                           absl::StartsWith(Arg(0), "certificates/")
                       ? Arg(0)
                       : Named("certificates", Arg(0)));
  request.set_format(f->second);
  request.set_password(args_.Get("password"));
  request.set_legacy_pkcs12(args_.Bool("legacy"));
  inv::ExportCertificateResponse response;
  if (absl::Status s = Rpc<inv::InventoryService>(
          &inv::InventoryService::Stub::ExportCertificate, request, &response);
      !s.ok()) {
    return s;
  }
  const std::string out = args_.Get("out");
  if (response.files_size() == 1 && out.empty() &&
      (f->second == inv::PEM || f->second == inv::FULLCHAIN_PEM)) {
    out_ << response.files(0).data();
    return absl::OkStatus();
  }
  if (out.empty()) {
    return Usage("this format is binary or has several files: give --out");
  }
  std::vector<std::string> written;
  if (response.files_size() == 1 && !std::filesystem::is_directory(out)) {
    if (absl::Status s = WriteFile(out, response.files(0).data(),
                                   response.files(0).sensitive());
        !s.ok()) {
      return s;
    }
    written.push_back(out);
  } else {
    std::error_code ec;
    std::filesystem::create_directories(out, ec);
    for (const inv::ExportedFile& file : response.files()) {
      std::string path = (std::filesystem::path(out) /
                          std::filesystem::path(file.filename()).filename())
                             .string();
      if (absl::Status s = WriteFile(path, file.data(), file.sensitive());
          !s.ok()) {
        return s;
      }
      written.push_back(path);
    }
  }
  for (const std::string& w : written) out_ << "wrote " << w << "\n";
  return absl::OkStatus();
}

absl::Status Cli::CertUpdate() {
  if (absl::Status s = Flags({"owner", "env", "tag", "display-name",
                              "auto-renew", "renew-before-days"});
      !s.ok()) {
    return s;
  }
  if (absl::Status s = Need(1, "the certificate ID"); !s.ok()) return s;
  inv::UpdateCertificateRequest request;
  inv::ManagedCertificate* c = request.mutable_certificate();
  c->set_name(Named("certificates", Arg(0)));
  auto* mask = request.mutable_update_mask();
  if (args_.Has("owner")) {
    c->set_owner(args_.Get("owner"));
    mask->add_paths("owner");
  }
  if (args_.Has("display-name")) {
    c->set_display_name(args_.Get("display-name"));
    mask->add_paths("display_name");
  }
  if (args_.Has("env")) {
    for (const std::string& e : args_.All("env")) c->add_environments(e);
    mask->add_paths("environments");
  }
  if (args_.Has("tag")) {
    for (const std::string& t : args_.All("tag")) {
      std::pair<std::string, std::string> kv = absl::StrSplit(t, '=');
      (*c->mutable_tags())[kv.first] = kv.second;
    }
    mask->add_paths("tags");
  }
  if (args_.Has("auto-renew")) {
    c->mutable_renewal()->set_auto_renew(args_.Bool("auto-renew"));
    mask->add_paths("renewal.auto_renew");
  }
  if (args_.Has("renew-before-days")) {
    int days = 0;
    if (!absl::SimpleAtoi(args_.Get("renew-before-days"), &days)) {
      return Usage("--renew-before-days needs a number");
    }
    c->mutable_renewal()->set_renew_before_days(days);
    mask->add_paths("renewal.renew_before_days");
  }
  if (mask->paths().empty()) return Usage("nothing to update: give a flag");
  inv::ManagedCertificate response;
  if (absl::Status s = Rpc<inv::InventoryService>(
          &inv::InventoryService::Stub::UpdateCertificate, request, &response);
      !s.ok()) {
    return s;
  }
  PrintObject(response, format_, CertColumns(), out_);
  return absl::OkStatus();
}

absl::Status Cli::CertDelete() {
  if (absl::Status s = Flags({}); !s.ok()) return s;
  if (absl::Status s = Need(1, "the certificate ID"); !s.ok()) return s;
  inv::DeleteCertificateRequest request;
  request.set_name(Named("certificates", Arg(0)));
  inv::ManagedCertificate response;
  if (absl::Status s = Rpc<inv::InventoryService>(
          &inv::InventoryService::Stub::DeleteCertificate, request, &response);
      !s.ok()) {
    return s;
  }
  out_ << "deleted " << request.name() << "\n";
  return absl::OkStatus();
}

absl::Status Cli::CertStats() {
  if (absl::Status s = Flags({"filter"}); !s.ok()) return s;
  inv::GetStatsRequest request;
  request.set_filter(args_.Get("filter"));
  inv::Stats response;
  if (absl::Status s = Rpc<inv::InventoryService>(
          &inv::InventoryService::Stub::GetStats, request, &response);
      !s.ok()) {
    return s;
  }
  PrintObject(response, format_ == Format::kTable ? Format::kYaml : format_, {},
              out_);
  return absl::OkStatus();
}

// ---------------------------------------------------------------- orders

absl::Status Cli::OrderCreate() {
  if (absl::Status s = Flags({"cn", "san", "owner", "issuer", "env", "key-type",
                              "validity-days", "auto-renew", "wait",
                              "display-name", "profile", "request-id"});
      !s.ok()) {
    return s;
  }
  if (!args_.Has("cn")) return Usage("order create needs --cn");
  static const std::map<std::string, common::v1::KeyType> kKeys = {
      {"ecdsa-p256", common::v1::ECDSA_P256},
      {"ecdsa-p384", common::v1::ECDSA_P384},
      {"rsa-2048", common::v1::RSA_2048},
      {"rsa-3072", common::v1::RSA_3072},
      {"rsa-4096", common::v1::RSA_4096},
      {"ed25519", common::v1::ED25519}};
  auto key = kKeys.find(args_.Get("key-type", "ecdsa-p256"));
  if (key == kKeys.end()) {
    return Usage(absl::StrCat("--key-type \"", args_.Get("key-type"),
                              "\" is not a key type this CLI knows"));
  }
  iss::CreateOrderRequest request;
  auto* cn = request.mutable_subject()->add_attributes();
  cn->set_type("CN");
  cn->set_value(args_.Get("cn"));
  std::vector<std::string> sans = args_.All("san");
  if (sans.empty()) sans.push_back(args_.Get("cn"));
  for (const std::string& name : sans) {
    auto* san = request.add_sans();
    absl::string_view value = name;
    common::v1::SubjectAltName::Type type = common::v1::SubjectAltName::DNS;
    if (absl::ConsumePrefix(&value, "ip:") ||
        absl::ConsumePrefix(&value, "IP:")) {
      type = common::v1::SubjectAltName::IP;
    } else if (absl::ConsumePrefix(&value, "email:")) {
      type = common::v1::SubjectAltName::EMAIL;
    } else if (absl::ConsumePrefix(&value, "uri:")) {
      type = common::v1::SubjectAltName::URI;
    } else {
      (void)absl::ConsumePrefix(&value, "dns:");
    }
    san->set_type(type);
    san->set_value(std::string(value));
  }
  request.mutable_key_spec()->set_type(key->second);
  request.set_issuer(Named("issuers", args_.Get("issuer", "internal")));
  request.set_owner(args_.Get("owner"));
  request.set_environment(args_.Get("env"));
  request.set_display_name(args_.Get("display-name"));
  request.set_profile(args_.Get("profile"));
  request.set_request_id(args_.Get("request-id"));
  request.set_auto_renew(args_.Bool("auto-renew"));
  request.set_wait(args_.Bool("wait"));
  if (args_.Has("validity-days")) {
    int days = 0;
    if (!absl::SimpleAtoi(args_.Get("validity-days"), &days)) {
      return Usage("--validity-days needs a number");
    }
    request.set_validity_days(days);
  }
  iss::Order response;
  if (absl::Status s = Rpc<iss::IssuanceService>(
          &iss::IssuanceService::Stub::CreateOrder, request, &response);
      !s.ok()) {
    return s;
  }
  PrintOrder(response);
  return absl::OkStatus();
}

absl::Status Cli::OrderList() {
  if (absl::Status s = Flags({"filter", "state", "page-size"}); !s.ok()) {
    return s;
  }
  iss::ListOrdersRequest request;
  std::string filter = args_.Get("filter");
  if (args_.Has("state")) {
    std::string state = absl::AsciiStrToUpper(args_.Get("state"));
    filter = filter.empty()
                 ? absl::StrCat("state = ", state)
                 : absl::StrCat("(", filter, ") AND state = ", state);
  }
  request.set_filter(filter);
  request.set_page_size(100);
  iss::ListOrdersResponse response;
  if (absl::Status s = Rpc<iss::IssuanceService>(
          &iss::IssuanceService::Stub::ListOrders, request, &response);
      !s.ok()) {
    return s;
  }
  PrintList(response, "orders", format_, OrderColumns(), out_);
  return absl::OkStatus();
}

absl::Status Cli::OrderGet() {
  if (absl::Status s = Flags({}); !s.ok()) return s;
  if (absl::Status s = Need(1, "the order ID"); !s.ok()) return s;
  iss::GetOrderRequest request;
  request.set_name(Named("orders", Arg(0)));
  iss::Order response;
  if (absl::Status s = Rpc<iss::IssuanceService>(
          &iss::IssuanceService::Stub::GetOrder, request, &response);
      !s.ok()) {
    return s;
  }
  PrintOrder(response);
  return absl::OkStatus();
}

absl::Status Cli::OrderDecide(const std::string& verb) {
  if (absl::Status s = Flags({"comment"}); !s.ok()) return s;
  if (absl::Status s = Need(1, "the order ID"); !s.ok()) return s;
  iss::Order response;
  absl::Status s;
  const std::string name = Named("orders", Arg(0));
  if (verb == "approve") {
    iss::ApproveOrderRequest request;
    request.set_name(name);
    request.set_comment(args_.Get("comment"));
    s = Rpc<iss::IssuanceService>(&iss::IssuanceService::Stub::ApproveOrder,
                                  request, &response);
  } else if (verb == "reject") {
    iss::RejectOrderRequest request;
    request.set_name(name);
    request.set_comment(args_.Get("comment"));
    s = Rpc<iss::IssuanceService>(&iss::IssuanceService::Stub::RejectOrder,
                                  request, &response);
  } else {
    iss::CancelOrderRequest request;
    request.set_name(name);
    s = Rpc<iss::IssuanceService>(&iss::IssuanceService::Stub::CancelOrder,
                                  request, &response);
  }
  if (!s.ok()) return s;
  PrintOrder(response);
  return absl::OkStatus();
}

absl::Status Cli::OrderUpload() {
  if (absl::Status s = Flags({}); !s.ok()) return s;
  if (absl::Status s = Need(2, "the order ID and the certificate FILE");
      !s.ok()) {
    return s;
  }
  absl::StatusOr<std::string> data = ReadFile(Arg(1));
  if (!data.ok()) return data.status();
  iss::UploadCertificateRequest request;
  request.set_name(Named("orders", Arg(0)));
  request.set_certificate(*data);
  iss::Order response;
  if (absl::Status s = Rpc<iss::IssuanceService>(
          &iss::IssuanceService::Stub::UploadCertificate, request, &response);
      !s.ok()) {
    return s;
  }
  PrintOrder(response);
  return absl::OkStatus();
}

absl::Status Cli::OrderCsr() {
  if (absl::Status s = Flags({"out"}); !s.ok()) return s;
  if (absl::Status s = Need(1, "the order ID"); !s.ok()) return s;
  iss::GetOrderCsrRequest request;
  request.set_name(Named("orders", Arg(0)));
  iss::OrderCsr response;
  if (absl::Status s = Rpc<iss::IssuanceService>(
          &iss::IssuanceService::Stub::GetOrderCsr, request, &response);
      !s.ok()) {
    return s;
  }
  if (args_.Has("out")) {
    if (absl::Status s = WriteFile(args_.Get("out"), response.csr_pem(), false);
        !s.ok()) {
      return s;
    }
    out_ << "wrote " << args_.Get("out") << "\n";
    return absl::OkStatus();
  }
  out_ << response.csr_pem();
  return absl::OkStatus();
}

absl::Status Cli::IssuerList() {
  if (absl::Status s = Flags({}); !s.ok()) return s;
  iss::ListIssuersRequest request;
  iss::ListIssuersResponse response;
  if (absl::Status s = Rpc<iss::IssuanceService>(
          &iss::IssuanceService::Stub::ListIssuers, request, &response);
      !s.ok()) {
    return s;
  }
  PrintList(response, "issuers", format_,
            {{"NAME", "name"},
             {"TYPE", "type"},
             {"DISPLAY NAME", "displayName"},
             {"PUBLIC TRUST", "publicTrust"}},
            out_);
  return absl::OkStatus();
}

absl::Status Cli::IssuerGet() {
  if (absl::Status s = Flags({}); !s.ok()) return s;
  if (absl::Status s = Need(1, "the issuer ID"); !s.ok()) return s;
  iss::GetIssuerRequest request;
  request.set_name(Named("issuers", Arg(0)));
  iss::Issuer response;
  if (absl::Status s = Rpc<iss::IssuanceService>(
          &iss::IssuanceService::Stub::GetIssuer, request, &response);
      !s.ok()) {
    return s;
  }
  PrintObject(response, format_ == Format::kTable ? Format::kYaml : format_, {},
              out_);
  return absl::OkStatus();
}

absl::Status Cli::CaCrl() {
  if (absl::Status s = Flags({"out"}); !s.ok()) return s;
  if (absl::Status s = Need(1, "the issuer ID"); !s.ok()) return s;
  iss::GetCrlRequest request;
  request.set_issuer(Named("issuers", Arg(0)));
  iss::Crl response;
  if (absl::Status s = Rpc<iss::IssuanceService>(
          &iss::IssuanceService::Stub::GetCrl, request, &response);
      !s.ok()) {
    return s;
  }
  if (args_.Has("out")) {
    if (absl::Status s = WriteFile(args_.Get("out"), response.der(), false);
        !s.ok()) {
      return s;
    }
    out_ << "wrote " << args_.Get("out") << " (CRL number "
         << response.crl_number() << ", " << response.revoked_count()
         << " revoked)\n";
    return absl::OkStatus();
  }
  iss::Crl summary = response;
  summary.clear_der();
  PrintObject(summary, format_,
              {{"NUMBER", "crlNumber"},
               {"THIS UPDATE", "thisUpdate"},
               {"NEXT UPDATE", "nextUpdate"},
               {"REVOKED", "revokedCount"}},
              out_);
  return absl::OkStatus();
}

absl::Status Cli::KeyList() {
  if (absl::Status s = Flags({"filter"}); !s.ok()) return s;
  vlt::ListKeysRequest request;
  request.set_filter(args_.Get("filter"));
  request.set_page_size(100);
  vlt::ListKeysResponse response;
  if (absl::Status s = Rpc<vlt::VaultService>(
          &vlt::VaultService::Stub::ListKeys, request, &response);
      !s.ok()) {
    return s;
  }
  PrintList(response, "keys", format_,
            {{"NAME", "name"},
             {"OWNER", "owner"},
             {"ALGORITHM", "info.algorithm"},
             {"BITS", "info.bits"},
             {"STATE", "state"},
             {"CREATED", "createTime"}},
            out_);
  return absl::OkStatus();
}

absl::Status Cli::KeyGet() {
  if (absl::Status s = Flags({}); !s.ok()) return s;
  if (absl::Status s = Need(1, "the key ID"); !s.ok()) return s;
  vlt::GetKeyRequest request;
  request.set_name(Named("keys", Arg(0)));
  vlt::Key response;
  if (absl::Status s = Rpc<vlt::VaultService>(&vlt::VaultService::Stub::GetKey,
                                              request, &response);
      !s.ok()) {
    return s;
  }
  PrintObject(response, format_ == Format::kTable ? Format::kYaml : format_, {},
              out_);
  return absl::OkStatus();
}

// ---------------------------------------------------------------- tokens

absl::Status Cli::TokenCreate() {
  if (absl::Status s =
          Flags({"principal", "role", "ttl", "description", "service-account"});
      !s.ok()) {
    return s;
  }
  gw::CreateTokenRequest request;
  request.set_principal(args_.Get("principal"));
  for (const std::string& role : args_.All("role")) {
    std::pair<std::string, std::string> p =
        absl::StrSplit(role, absl::MaxSplits(':', 1));
    if (p.first.empty() || p.second.empty()) {
      return Usage(absl::StrCat("--role \"", role, "\" is not ROLE:TEAM"));
    }
    gw::RoleBinding* b = request.add_roles();
    b->set_role(p.first);
    b->set_team(p.second);
  }
  if (args_.Has("ttl")) {
    absl::StatusOr<absl::Duration> ttl = ParseDurationArg(args_.Get("ttl"));
    if (!ttl.ok()) return Usage(ttl.status().message());
    request.mutable_ttl()->set_seconds(absl::ToInt64Seconds(*ttl));
  }
  request.set_description(args_.Get("description"));
  if (args_.Has("service-account")) request.set_kind(gw::SERVICE_ACCOUNT);
  gw::CreateTokenResponse response;
  if (absl::Status s = Rpc<gw::GatewayService>(
          &gw::GatewayService::Stub::CreateToken, request, &response);
      !s.ok()) {
    return s;
  }
  if (format_ != Format::kTable) {
    PrintObject(response, format_, {}, out_);
    return absl::OkStatus();
  }
  err_ << "created " << response.token().name() << " for "
       << response.token().principal()
       << "; the secret below is shown only now:\n";
  out_ << response.secret() << "\n";
  return absl::OkStatus();
}

absl::Status Cli::TokenList() {
  if (absl::Status s = Flags({"show-inactive"}); !s.ok()) return s;
  gw::ListTokensRequest request;
  request.set_show_inactive(args_.Bool("show-inactive"));
  request.set_page_size(1000);
  gw::ListTokensResponse response;
  if (absl::Status s = Rpc<gw::GatewayService>(
          &gw::GatewayService::Stub::ListTokens, request, &response);
      !s.ok()) {
    return s;
  }
  PrintList(response, "tokens", format_,
            {{"NAME", "name"},
             {"PRINCIPAL", "principal"},
             {"KIND", "kind"},
             {"EXPIRES", "expireTime"},
             {"REVOKED", "revokeTime"},
             {"DESCRIPTION", "description"}},
            out_);
  return absl::OkStatus();
}

absl::Status Cli::TokenRevoke() {
  if (absl::Status s = Flags({}); !s.ok()) return s;
  if (absl::Status s = Need(1, "the token ID"); !s.ok()) return s;
  gw::RevokeTokenRequest request;
  request.set_name(Named("tokens", Arg(0)));
  gw::Token response;
  if (absl::Status s = Rpc<gw::GatewayService>(
          &gw::GatewayService::Stub::RevokeToken, request, &response);
      !s.ok()) {
    return s;
  }
  out_ << "revoked " << response.name() << "\n";
  return absl::OkStatus();
}

absl::Status Cli::WhoAmI() {
  if (absl::Status s = Flags({}); !s.ok()) return s;
  gw::WhoAmIRequest request;
  gw::Principal response;
  if (absl::Status s = Rpc<gw::GatewayService>(
          &gw::GatewayService::Stub::WhoAmI, request, &response);
      !s.ok()) {
    return s;
  }
  if (format_ != Format::kTable) {
    PrintObject(response, format_, {}, out_);
    return absl::OkStatus();
  }
  std::vector<std::string> roles;
  for (const auto& r : response.roles()) {
    roles.push_back(absl::StrCat(r.role(), ":", r.team()));
  }
  out_ << response.name() << " (" << response.authenticated_by() << ")  "
       << absl::StrJoin(roles, ",") << "\n";
  return absl::OkStatus();
}

// ---------------------------------------------------------------- audit

absl::Status Cli::AuditList() {
  if (absl::Status s = Flags({"filter", "from", "page-size"}); !s.ok()) {
    return s;
  }
  gw::ListAuditEntriesRequest request;
  request.set_filter(args_.Get("filter"));
  uint64_t from = 0;
  if (args_.Has("from") && !absl::SimpleAtoi(args_.Get("from"), &from)) {
    return Usage("--from needs a record index");
  }
  request.set_start_index(from);
  request.set_page_size(1000);
  gw::ListAuditEntriesResponse response;
  if (absl::Status s = Rpc<gw::AuditService>(
          &gw::AuditService::Stub::ListAuditEntries, request, &response);
      !s.ok()) {
    return s;
  }
  for (auto& e : *response.mutable_entries()) {
    e.clear_leaf_hash();
    e.clear_root_after();
  }
  PrintList(response, "entries", format_,
            {{"INDEX", "index"},
             {"TIME", "time"},
             {"PRINCIPAL", "principal"},
             {"METHOD", "method"},
             {"RESOURCE", "resource"},
             {"PHASE", "phase"},
             {"CODE", "code"}},
            out_);
  return absl::OkStatus();
}

absl::Status Cli::AuditVerify() {
  if (absl::Status s = Flags({"public-key"}); !s.ok()) return s;
  std::vector<audit::AuditRecord> records;
  gw::ListAuditEntriesRequest list;
  list.set_page_size(1000);
  while (true) {
    gw::ListAuditEntriesResponse page;
    if (absl::Status s = Rpc<gw::AuditService>(
            &gw::AuditService::Stub::ListAuditEntries, list, &page);
        !s.ok()) {
      return s;
    }
    for (const auto& e : page.entries())
      records.push_back(gateway::FromProto(e));
    if (page.next_start_index() == 0) break;
    list.set_start_index(page.next_start_index());
  }
  gw::ListCheckpointsRequest cl;
  gw::ListCheckpointsResponse cps;
  if (absl::Status s = Rpc<gw::AuditService>(
          &gw::AuditService::Stub::ListCheckpoints, cl, &cps);
      !s.ok()) {
    return s;
  }
  std::vector<audit::Checkpoint> checkpoints;
  for (const auto& c : cps.checkpoints()) {
    checkpoints.push_back(gateway::FromProto(c));
  }
  std::string key_der;
  gw::GetAuditKeyRequest kr;
  gw::AuditKey key;
  if (absl::Status s =
          Rpc<gw::AuditService>(&gw::AuditService::Stub::GetAuditKey, kr, &key);
      !s.ok()) {
    return s;
  }
  key_der = key.public_key_der();
  if (args_.Has("public-key")) {
    // A pinned key: the gateway's answer must match it.
    absl::StatusOr<std::string> pinned = ReadFile(args_.Get("public-key"));
    if (!pinned.ok()) return pinned.status();
    std::string pem = *pinned;
    if (absl::StripAsciiWhitespace(pem) !=
        absl::StripAsciiWhitespace(key.public_key_pem())) {
      return absl::DataLossError(
          "the gateway's audit key is not the pinned --public-key");
    }
  } else {
    err_ << "note: trusting the audit key the gateway reports (" << key.key_id()
         << "); pin it with --public-key\n";
  }
  absl::StatusOr<audit::VerifyReport> report =
      audit::VerifyLog(records, checkpoints, key_der);
  if (!report.ok()) return report.status();
  out_ << "audit log OK: " << report->records << " records, "
       << report->checkpoints << " signed checkpoints, latest at tree size "
       << report->latest_signed_size;
  if (report->latest_signed_size < report->records) {
    out_ << " (" << report->records - report->latest_signed_size
         << " newer records are not signed yet)";
  }
  out_ << "\n";
  return absl::OkStatus();
}

}  // namespace

int Run(const std::vector<std::string>& argv, std::ostream& out,
        std::ostream& err) {
  std::vector<std::string> rest(argv.begin() + (argv.empty() ? 0 : 1),
                                argv.end());
  if (rest.empty() || rest[0] == "help" || rest[0] == "--help" ||
      rest[0] == "-h") {
    (rest.empty() ? err : out) << kUsageText;
    return rest.empty() ? kUsage : 0;
  }
  absl::StatusOr<Args> args = ParseArgs(rest, kBooleans);
  if (!args.ok()) {
    err << "error: " << args.status().message() << "\n";
    return kUsage;
  }
  absl::StatusOr<Settings> settings = ResolveSettings(*args);
  if (!settings.ok()) {
    err << "error: " << settings.status().message() << "\n";
    return kUsage;
  }
  Cli cli(*args, *settings, out, err);
  if (absl::Status s = cli.Init(); !s.ok()) {
    err << "error: " << s.message() << "\n";
    return kUsage;
  }
  return cli.Dispatch();
}

}  // namespace certplane::cli

// keel's entry point: command line, configuration, signals, and the wiring of every module.
#include <CLI/CLI.hpp>
#include <boost/asio/signal_set.hpp>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <unistd.h>

#include <csignal>
#include <iostream>

#include "config/config.hpp"
#include "core/log.hpp"
#include "session/runtime.hpp"

// Present only in a build for profile-guided optimization's training run (-fprofile-generate).
extern "C" void __gcov_dump(void) __attribute__((weak));

namespace {

int print_errors(const keel::config::ParseResult& r, const std::string& source) {
  for (auto& e : r.errors) {
    if (e.line > 0) std::cerr << source << ":" << e.line << ": " << e.message << "\n";
    else std::cerr << source << ": " << e.message << "\n";
  }
  return 1;
}

int serve(keel::config::ConfigPtr cfg) {
  keel::log::set_level(spdlog::level::from_str(cfg->log_level));
  keel::session::Runtime rt(cfg);
  try {
    rt.start();
  } catch (const std::exception& e) {
    spdlog::error("cannot start: {}", e.what());
    std::fflush(nullptr);
    _exit(1);
  }
  spdlog::info("keel {} listening on {}:{}{} with {} workers", KEEL_VERSION, cfg->listen_host, cfg->listen_port,
               rt.socket_file.path.empty() ? "" : " and " + rt.socket_file.path, cfg->workers);
  keel::asio::io_context main_io;
  keel::asio::signal_set signals(main_io, SIGINT, SIGTERM);
  signals.async_wait([&](const keel::error_code&, int sig) {
    spdlog::info("signal {}: shutting down", sig);
    main_io.stop();
  });
  main_io.run();
  rt.stop();
  spdlog::shutdown();
  std::fflush(nullptr);
  if (__gcov_dump) __gcov_dump();  // a training run writes its profile here: _exit skips the writer
  // Sessions and pools live on the workers' io_contexts; exit without tearing them down one by one.
  _exit(0);
}

}  // namespace

int main(int argc, char** argv) {
  std::signal(SIGPIPE, SIG_IGN);
  spdlog::set_default_logger(spdlog::stderr_color_mt("keel"));
  spdlog::set_pattern("%Y-%m-%dT%H:%M:%S.%e %^%l%$ %v");

  CLI::App app{"keel: a PostgreSQL gateway"};
  app.set_version_flag("--version", std::string("keel ") + KEEL_VERSION);
  std::string config_path;
  keel::config::QuickStart q;
  app.add_option("--config", config_path, "TOML configuration file");
  auto* primary = app.add_option("--primary", q.primary_url, "quick start: postgres://USER:PASS@HOST:PORT/DB");
  app.add_option("--listen", q.listen, "quick start: host:port to listen on")->capture_default_str();
  app.add_option("--pool-mode", q.pool_mode, "quick start: transaction or session")->capture_default_str();
  app.add_option("--pool-size", q.pool_size, "quick start: server connections per pool")->capture_default_str();
  app.add_option("--workers", q.workers, "quick start: worker threads (0 = one per core)")->capture_default_str();

  auto* check = app.add_subcommand("check", "validate a configuration file and name each error with its line");
  std::string check_path;
  check->add_option("file", check_path, "the file to check")->required();
  auto* reference = app.add_subcommand("config-reference", "print the configuration reference (markdown)");

  CLI11_PARSE(app, argc, argv);

  if (*check) {
    auto r = keel::config::load_config_file(check_path);
    if (!r.errors.empty()) return print_errors(r, check_path);
    std::cout << "ok\n";
    return 0;
  }
  if (*reference) {
    std::cout << keel::config::reference_markdown();
    return 0;
  }
  if (!config_path.empty() && *primary) {
    std::cerr << "give either --config or --primary, not both\n";
    return 2;
  }
  if (!config_path.empty()) {
    auto r = keel::config::load_config_file(config_path);
    if (!r.errors.empty()) return print_errors(r, config_path);
    return serve(r.config);
  }
  if (*primary) {
    auto r = keel::config::config_from_quickstart(q);
    if (!r.errors.empty()) return print_errors(r, "command line");
    return serve(r.config);
  }
  std::cerr << app.help();
  return 2;
}

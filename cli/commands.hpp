// The subcommands of the admin CLI. Each gets argv with argv[0] = "backstop <name>"
// and returns the process exit status: 0 all fine, 1 a verification failed, 2 usage
// or key-file error.
#pragma once

namespace backstop::cli {

constexpr int kExitOk = 0;
constexpr int kExitFailed = 1;
constexpr int kExitUsage = 2;

int cmd_srs(int argc, char** argv);
int cmd_batv(int argc, char** argv);
int cmd_verp(int argc, char** argv);
int cmd_normalize(int argc, char** argv);
int cmd_keygen(int argc, char** argv);
int cmd_classify(int argc, char** argv);
int cmd_watermark(int argc, char** argv);
int cmd_bounces(int argc, char** argv);

}  // namespace backstop::cli

/* qbench info: what this machine is and what q8 will run on it. */
#include <string.h>

#include "bench/qbench.h"
#include "dispatch/registry.h"

static void print_bytes(const char *label, size_t bytes) {
  if (bytes == 0) {
    printf("  %-5s unknown\n", label);
  } else if (bytes >= (1u << 20)) {
    printf("  %-5s %zu MiB\n", label, bytes >> 20);
  } else {
    printf("  %-5s %zu KiB\n", label, bytes >> 10);
  }
}

static void print_text(const q8_cpu_info *cpu) {
  printf("q8 %s\n\n", q8_version());
  printf("CPU      %s / %s / %s", cpu->arch, cpu->vendor, cpu->model);
  if (cpu->family >= 0) printf(" (family %d, model %d, stepping %d)", cpu->family, cpu->model_id, cpu->stepping);
  if (cpu->emulated[0]) printf("\n         emulated: %s; timings are not a speed claim", cpu->emulated);
  printf("\n\nFeatures (cpu = reported by the CPU, os = state enabled by the OS):\n");
  for (int f = 0; f < Q8_CPU_FEATURE_COUNT; ++f) {
    if (!cpu->cpu_has[f]) {
      printf("  %-12s no\n", q8_cpu_feature_name((q8_cpu_feature)f));
    } else {
      printf("  %-12s cpu yes, os %s%s%s\n", q8_cpu_feature_name((q8_cpu_feature)f),
             cpu->os_ok[f] ? "yes" : "no", cpu->os_ok[f] ? "" : ": ", cpu->os_ok[f] ? "" : cpu->os_reason[f]);
    }
  }
#if defined(__x86_64__)
  printf("  xcr0 = 0x%llx, AMX tile permission: %s\n", (unsigned long long)cpu->xcr0,
         cpu->amx_permission ? "granted" : "not granted");
#endif
  printf("\nTopology (hwloc)%s%s\n", cpu->topology_error[0] ? ": " : "", cpu->topology_error);
  printf("  cores %d, hardware threads %d, packages %d\n", cpu->cores, cpu->pus, cpu->packages);
  print_bytes("L1d", cpu->l1d_bytes);
  print_bytes("L2", cpu->l2_bytes);
  print_bytes("L3", cpu->l3_bytes);

  const char *forced = q8_forced_isa();
  printf("\nISAs (%s):\n", forced ? "forced by Q8_ISA / q8_set_isa" : "automatic selection");
  for (int i = 0; i < Q8_ISA_COUNT; ++i) {
    const char *reason = NULL;
    const bool usable = q8_isa_usable_on((q8_isa)i, cpu, &reason);
    size_t count, kernels = 0;
    const q8_kernel *all = q8_kernels(&count);
    for (size_t k = 0; k < count; ++k) kernels += all[k].isa == (q8_isa)i;
    printf("  %-11s %-3s %2zu kernels%s%s%s\n", q8_isa_name((q8_isa)i), usable ? "yes" : "no",
           kernels, usable ? "" : "  (", usable ? "" : reason, usable ? "" : ")");
  }
  const char *targets[32];
  const size_t n = q8_hwy_supported_targets(targets, 32);
  printf("\nHighway targets usable here:");
  for (size_t i = 0; i < n && i < 32; ++i) printf(" %s", targets[i]);
  printf(" (in use: %s)\n", q8_hwy_target());

  printf("\nSelected kernels%s%s:\n", forced ? " with Q8_ISA=" : "", forced ? forced : "");
  for (int op = 0; op < Q8_OP_COUNT; ++op) {
    const q8_kernel *k = q8_select_kernel((q8_op)op);
    printf("  %-11s %s\n", q8_op_name((q8_op)op), k ? k->name : "(none)");
  }
}

static void print_json(const q8_cpu_info *cpu) {
  qb_json j = {.out = stdout};
  qb_json_begin_object(&j, NULL);
  qb_json_string(&j, "version", q8_version());
  qb_json_begin_object(&j, "cpu");
  qb_json_string(&j, "arch", cpu->arch);
  qb_json_string(&j, "vendor", cpu->vendor);
  qb_json_string(&j, "model", cpu->model);
  qb_json_int(&j, "family", cpu->family);
  qb_json_int(&j, "model_id", cpu->model_id);
  qb_json_int(&j, "stepping", cpu->stepping);
  qb_json_string(&j, "emulated", cpu->emulated);
  qb_json_begin_array(&j, "features"); /* usable = CPU has it and the OS enables it */
  for (int f = 0; f < Q8_CPU_FEATURE_COUNT; ++f) {
    if (q8_cpu_usable(cpu, (q8_cpu_feature)f)) qb_json_string(&j, NULL, q8_cpu_feature_name((q8_cpu_feature)f));
  }
  qb_json_end_array(&j);
  qb_json_begin_array(&j, "feature_detail");
  for (int f = 0; f < Q8_CPU_FEATURE_COUNT; ++f) {
    qb_json_begin_object(&j, NULL);
    qb_json_string(&j, "name", q8_cpu_feature_name((q8_cpu_feature)f));
    qb_json_bool(&j, "cpu", cpu->cpu_has[f]);
    qb_json_bool(&j, "os", cpu->os_ok[f]);
    qb_json_string(&j, "reason", cpu->cpu_has[f] ? cpu->os_reason[f] : "not reported by the CPU");
    qb_json_end_object(&j);
  }
  qb_json_end_array(&j);
  qb_json_int(&j, "xcr0", (long long)cpu->xcr0);
  qb_json_bool(&j, "amx_permission", cpu->amx_permission);
  qb_json_end_object(&j);

  qb_json_begin_object(&j, "topology");
  qb_json_int(&j, "cores", cpu->cores);
  qb_json_int(&j, "pus", cpu->pus);
  qb_json_int(&j, "packages", cpu->packages);
  qb_json_int(&j, "l1d_bytes", (long long)cpu->l1d_bytes);
  qb_json_int(&j, "l2_bytes", (long long)cpu->l2_bytes);
  qb_json_int(&j, "l3_bytes", (long long)cpu->l3_bytes);
  qb_json_string(&j, "error", cpu->topology_error);
  qb_json_end_object(&j);

  qb_json_begin_array(&j, "isas");
  for (int i = 0; i < Q8_ISA_COUNT; ++i) {
    const char *reason = NULL;
    const bool usable = q8_isa_usable_on((q8_isa)i, cpu, &reason);
    qb_json_begin_object(&j, NULL);
    qb_json_string(&j, "name", q8_isa_name((q8_isa)i));
    qb_json_bool(&j, "usable", usable);
    qb_json_string(&j, "reason", reason);
    qb_json_end_object(&j);
  }
  qb_json_end_array(&j);
  const char *forced = q8_forced_isa();
  qb_json_string(&j, "forced_isa", forced ? forced : "");

  qb_json_begin_object(&j, "selected");
  for (int op = 0; op < Q8_OP_COUNT; ++op) {
    const q8_kernel *k = q8_select_kernel((q8_op)op);
    qb_json_string(&j, q8_op_name((q8_op)op), k ? k->name : "");
  }
  qb_json_end_object(&j);

  qb_json_begin_object(&j, "hwy");
  const char *targets[32];
  const size_t n = q8_hwy_supported_targets(targets, 32);
  qb_json_begin_array(&j, "targets");
  for (size_t i = 0; i < n && i < 32; ++i) qb_json_string(&j, NULL, targets[i]);
  qb_json_end_array(&j);
  qb_json_string(&j, "selected", q8_hwy_target());
  qb_json_end_object(&j);

  qb_json_begin_array(&j, "kernels");
  size_t count;
  const q8_kernel *all = q8_kernels(&count);
  for (size_t k = 0; k < count; ++k) {
    qb_json_begin_object(&j, NULL);
    qb_json_string(&j, "name", all[k].name);
    qb_json_string(&j, "op", q8_op_name(all[k].op));
    qb_json_string(&j, "isa", q8_isa_name(all[k].isa));
    qb_json_int(&j, "mr", all[k].mr);
    qb_json_int(&j, "nr", all[k].nr);
    qb_json_int(&j, "kr", all[k].kr);
    qb_json_bool(&j, "usable", q8_isa_usable_on(all[k].isa, cpu, NULL));
    qb_json_end_object(&j);
  }
  qb_json_end_array(&j);
  qb_json_end_object(&j);
}

void qb_json_context_fields(qb_json *j) {
  const q8_cpu_info *cpu = q8_cpu();
  qb_json_string(j, "q8_version", q8_version());
  qb_json_string(j, "cpu_vendor", cpu->vendor);
  qb_json_string(j, "cpu_model", cpu->model);
  qb_json_bool(j, "emulated", cpu->emulated[0] != '\0'); /* true: timings are no speed claim */
  qb_json_int(j, "num_cpus", cpu->pus);
  qb_json_int(j, "physical_cores", cpu->cores);
#if defined(__VERSION__)
  qb_json_string(j, "compiler", __VERSION__);
#endif
#if defined(NDEBUG)
  qb_json_string(j, "library_build_type", "release");
#else
  qb_json_string(j, "library_build_type", "debug"); /* figures from it are not speed claims */
#endif
}

static void usage(FILE *out) {
  fputs("usage: qbench info [--json]\n\n"
        "Prints the CPU (vendor, model, the features q8 cares about and whether the OS\n"
        "enables them), the topology hwloc reports (cores, caches), every ISA q8 knows\n"
        "with usable yes/no and why not, the Highway targets, and the kernel selected\n"
        "for each operation (honouring Q8_ISA).\n\n"
        "  --json   one JSON object: version, cpu{vendor, model, features[]},\n"
        "           topology{cores, l1d_bytes, l2_bytes, l3_bytes}, isas[{name, usable,\n"
        "           reason}], selected{op: kernel}, hwy, kernels[]\n"
        "  --help   this text\n", out);
}

int qb_cmd_info(int argc, char **argv) {
  bool json = false;
  for (int i = 1; i < argc; ++i) {
    if (strcmp(argv[i], "--json") == 0) {
      json = true;
    } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
      usage(stdout);
      return 0;
    } else {
      fprintf(stderr, "qbench info: unknown option '%s'\n", argv[i]);
      usage(stderr);
      return 2;
    }
  }
  /* A bad Q8_ISA is reported, not silently ignored. */
  bool forced;
  q8_isa isa;
  if (q8_forced(&forced, &isa) != Q8_OK) {
    fprintf(stderr, "qbench: %s\n", q8_error_detail());
    return 2;
  }
  if (json) {
    print_json(q8_cpu());
  } else {
    print_text(q8_cpu());
  }
  return 0;
}

/*
 * The emergency benchmark's baseline: the least a pjsua-lib program must do to
 * send an emergency INVITE with location by value. Compiled at bench time
 * against the installed pjproject (pkg-config libpjproject); our own code.
 *
 *   pjsua-caller <local-port> <target-uri> <pidf-file> <content-id> ["Name: value"]...
 *
 * Reads commands on stdin: "call" places one call and prints
 * "t0 <CLOCK_MONOTONIC ns> <status> <make_call ns> <voluntary> <involuntary> <cpu ns>"
 * (t0 is taken before the INVITE is even built, as when a digit arrives;
 * then the time inside pjsua_call_make_call and this thread's context
 * switches meanwhile, as the agent's addon measures them); "quit" ends. Calls are not answered: the
 * benchmark's receiver rejects them, which ends them.
 */
#define _GNU_SOURCE /* RUSAGE_THREAD */
#include <pjsua-lib/pjsua.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

static long long mono_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void die(const char* what, pj_status_t st) {
  char msg[PJ_ERR_MSG_SIZE];
  pj_strerror(st, msg, sizeof msg);
  fprintf(stderr, "pjsua-caller: %s: %s\n", what, msg);
  exit(1);
}

static char* read_file(const char* path) {
  FILE* f = fopen(path, "rb");
  if (!f) {
    perror(path);
    exit(1);
  }
  fseek(f, 0, SEEK_END);
  long n = ftell(f);
  fseek(f, 0, SEEK_SET);
  char* buf = malloc((size_t)n + 1);
  if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
    perror(path);
    exit(1);
  }
  buf[n] = 0;
  fclose(f);
  return buf;
}

int main(int argc, char** argv) {
  if (argc < 5) {
    fprintf(stderr, "usage: %s <local-port> <target-uri> <pidf-file> <content-id> [\"Name: value\"]...\n", argv[0]);
    return 2;
  }
  unsigned port = (unsigned)atoi(argv[1]);
  pj_str_t target = pj_str(argv[2]);
  char* pidf = read_file(argv[3]);
  const char* content_id = argv[4];

  pj_log_set_level(0); /* stdout carries our protocol: no pjlib banner */
  pj_status_t st = pjsua_create();
  if (st != PJ_SUCCESS) die("pjsua_create", st);

  pjsua_config cfg;
  pjsua_config_default(&cfg);
  cfg.max_calls = 4;
  pjsua_logging_config log;
  pjsua_logging_config_default(&log);
  log.level = 0;
  log.console_level = 0;
  pjsua_media_config media;
  pjsua_media_config_default(&media);
  if ((st = pjsua_init(&cfg, &log, &media)) != PJ_SUCCESS) die("pjsua_init", st);

  pjsua_transport_config tc;
  pjsua_transport_config_default(&tc);
  tc.port = port;
  tc.bound_addr = pj_str("127.0.0.1");
  tc.public_addr = pj_str("127.0.0.1");
  pjsua_transport_id tid;
  if ((st = pjsua_transport_create(PJSIP_TRANSPORT_UDP, &tc, &tid)) != PJ_SUCCESS) die("transport", st);
  if ((st = pjsua_start()) != PJ_SUCCESS) die("pjsua_start", st);
  pjsua_set_null_snd_dev();

  /* A registration-less account with RTP on loopback, as the agent's route accounts. */
  pjsua_acc_config ac;
  pjsua_acc_config_default(&ac);
  char id[64];
  snprintf(id, sizeof id, "sip:baseline@127.0.0.1:%u", port);
  ac.id = pj_str(id);
  ac.transport_id = tid;
  ac.register_on_acc_add = PJ_FALSE;
  pjsua_transport_config_default(&ac.rtp_cfg);
  ac.rtp_cfg.port = port + 2;
  ac.rtp_cfg.bound_addr = pj_str("127.0.0.1");
  ac.rtp_cfg.public_addr = pj_str("127.0.0.1");
  pjsua_acc_id acc;
  if ((st = pjsua_acc_add(&ac, PJ_TRUE, &acc)) != PJ_SUCCESS) die("pjsua_acc_add", st);

  printf("ready\n");
  fflush(stdout);

  char line[64];
  while (fgets(line, sizeof line, stdin)) {
    if (strncmp(line, "quit", 4) == 0) break;
    if (strncmp(line, "call", 4) != 0) continue;

    long long t0 = mono_ns();
    pj_pool_t* pool = pjsua_pool_create("call", 4000, 4000);
    pjsua_msg_data md;
    pjsua_msg_data_init(&md);
    for (int i = 5; i < argc; i++) {
      char* colon = strchr(argv[i], ':');
      if (!colon) continue;
      pj_str_t name = {argv[i], (pj_ssize_t)(colon - argv[i])};
      char* v = colon + 1;
      while (*v == ' ') v++;
      pj_str_t value = pj_str(v);
      pj_list_push_back(&md.hdr_list, pjsip_generic_string_hdr_create(pool, &name, &value));
    }
    md.multipart_ctype.type = pj_str("multipart");
    md.multipart_ctype.subtype = pj_str("mixed");
    pjsip_multipart_part* part = pjsip_multipart_create_part(pool);
    pj_str_t type = pj_str("application"), subtype = pj_str("pidf+xml"), text = pj_str(pidf);
    part->body = pjsip_msg_body_create(pool, &type, &subtype, &text);
    pj_str_t cid_name = pj_str("Content-ID"), cid_value = pj_str((char*)content_id);
    pj_list_push_back(&part->hdr, pjsip_generic_string_hdr_create(pool, &cid_name, &cid_value));
    pj_list_push_back(&md.multipart_parts, part);

    pjsua_call_setting opt;
    pjsua_call_setting_default(&opt);
    opt.aud_cnt = 1;
    opt.vid_cnt = 0;
    opt.txt_cnt = 0;
    pjsua_call_id call;
    struct rusage r0, r1;
    getrusage(RUSAGE_THREAD, &r0);
    struct timespec c0, c1;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c0);
    long long m0 = mono_ns();
    st = pjsua_call_make_call(acc, &target, &opt, NULL, &md, &call);
    long long m1 = mono_ns();
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &c1);
    getrusage(RUSAGE_THREAD, &r1);
    pj_pool_release(pool);
    long long cpu = (c1.tv_sec - c0.tv_sec) * 1000000000LL + (c1.tv_nsec - c0.tv_nsec);
    printf("t0 %lld %d %lld %ld %ld %lld\n", t0, st, m1 - m0, r1.ru_nvcsw - r0.ru_nvcsw, r1.ru_nivcsw - r0.ru_nivcsw, cpu);
    fflush(stdout);
  }
  pjsua_call_hangup_all();
  pjsua_destroy2(PJSUA_DESTROY_NO_NETWORK);
  free(pidf);
  return 0;
}

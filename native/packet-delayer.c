/*
 * packet-delayer: latency, jitter and loss for a network namespace whose kernel has no sch_netem.
 *
 * iptables rules in the namespace send packets to NFQUEUE queues (one per distinct latency/jitter/loss);
 * this program, started inside the same namespace, drops each packet with the queue's loss probability,
 * holds the others for latency ± jitter (uniform) and then lets them go. A drop here is a real loss: the
 * sender's send() has already succeeded, as on a wire (an iptables DROP in OUTPUT would fail it with
 * EPERM, and TCP would just try the same segment again). Started by
 * runners/network/packet-delayer-process.ts, configured through stdin:
 *
 *   queue <number> <latency ns> <jitter ns> <loss, parts per billion> <hold|resend>
 *   commit                      -> binds new queues, applies the set, answers "ready" (or "error …")
 *   (end of input)              -> lets every held packet go at once and exits
 *
 * Two ways to hold a packet:
 *   resend: the packet is copied, the kernel's copy is dropped at once (silently: the sender already
 *     handed it over), and the copy is sent again through a raw socket when it is due. This frees the
 *     sending socket's memory at once, as netem does (skb_orphan_partial): TCP small queues
 *     (tcp_limit_output_bytes, ~1 ms of data below TCP) and UDP's send buffer would otherwise count every
 *     held packet, and a 50 ms delay would cap a TCP flow at a few Mbit/s. Used for outgoing IPv4 packets
 *     no longer than the interface's MTU; re-sent packets carry mark 0x200000 so the rules let them pass.
 *   hold: the kernel keeps the packet and gets an ACCEPT verdict when it is due (incoming packets, and
 *     outgoing ones the raw socket could not send, like a UDP datagram larger than the MTU).
 *
 * Order: a packet never leaves before an earlier packet of the same flow (protocol, addresses, ports),
 * jitter or not; reordering is netem's `reorder`, which this program does not do.
 * Bounds: at most 65,536 packets and `--max-bytes` (default 32 MiB) of copies are held; beyond that,
 * packets are dropped, like a full netem queue. Each kernel queue holds at most 8,192 packets.
 * The iptables rules use --queue-bypass: when this program is not running, traffic flows undelayed.
 *
 * Accuracy: the timer is ppoll() with nanosecond timeouts and a 1 ns timer slack, packets are read in
 * batches (recvmmsg) and verdicts sent in batches, and the process asks for a high priority; at 10–50
 * Mbit/s (1,000–4,500 packets/s) a packet leaves within tens of microseconds of its due time.
 *
 *   packet-delayer [--interface <name>] [--watch-pid <pid>] [--max-bytes <n>]
 *   packet-delayer --probe      binds and unbinds a queue, prints "probe ok": NFQUEUE works here
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <net/if.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <libmnl/libmnl.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <libnetfilter_queue/libnetfilter_queue.h>

#define MAX_QUEUES 256
#define HEAP_CAPACITY 65536
#define FLOW_SLOTS 4096
#define KERNEL_QUEUE_MAXLEN 8192
#define RESEND_MARK 0x200000
#define RECV_BATCH 32
#define RECV_BUFFER_SIZE (65536 + 4096)
#define VERDICT_BUFFER_SIZE 65536

struct queue {
  uint16_t number;
  bool resend;
  bool configured; /* part of the last committed set */
  uint64_t latency_ns;
  uint64_t jitter_ns;
  uint64_t loss_ppb;
  bool resync;        /* the socket overflowed: accept everything before the next packet seen */
  uint32_t watermark; /* held ids up to this one were accepted in bulk after an overflow */
  bool has_watermark;
};

struct held {
  uint64_t due_ns;
  uint64_t sequence; /* equal due times leave in arrival order */
  unsigned char *copy; /* resend: the packet; NULL: hold, the kernel has it */
  uint32_t length;
  uint32_t id;
  uint16_t queue_index;
};

static struct queue queues[MAX_QUEUES];
static int queue_count;
static int16_t queue_index_by_number[65536];

static struct held heap[HEAP_CAPACITY];
static int heap_size;
static uint64_t next_sequence;
static uint64_t flow_last_due[FLOW_SLOTS];
static uint64_t held_bytes;
static uint64_t max_held_bytes = 32u << 20;

static struct mnl_socket *netlink;
static int netlink_fd;
static int raw_fd = -1;
static const char *interface_name;
static uint32_t mtu = 1500;
static uint32_t next_seq = 1;

static char verdicts[VERDICT_BUFFER_SIZE];
static size_t verdicts_length;

static uint64_t count_delayed, count_lost, count_dropped_full, count_resent, count_resend_failed, count_resyncs,
    count_netlink_errors;
static uint64_t random_state;
static volatile sig_atomic_t stop_requested;

static uint64_t now_ns(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

static uint64_t random_u64(void) {
  /* xorshift64*: plenty for jitter */
  random_state ^= random_state >> 12;
  random_state ^= random_state << 25;
  random_state ^= random_state >> 27;
  return random_state * 0x2545F4914F6CDD1DULL;
}

static void die(const char *what) {
  fprintf(stderr, "packet-delayer: %s: %s\n", what, strerror(errno));
  exit(1);
}

/* ---- verdicts, batched into one send ---- */

static void flush_verdicts(void) {
  if (verdicts_length == 0) return;
  if (mnl_socket_sendto(netlink, verdicts, verdicts_length) < 0) count_netlink_errors++;
  verdicts_length = 0;
}

static void add_verdict(uint16_t queue_number, uint32_t id, int verdict, bool batch) {
  if (verdicts_length + MNL_NLMSG_HDRLEN + 64 > sizeof verdicts) flush_verdicts();
  struct nlmsghdr *nlh = nfq_nlmsg_put(verdicts + verdicts_length,
                                       batch ? NFQNL_MSG_VERDICT_BATCH : NFQNL_MSG_VERDICT, queue_number);
  nfq_nlmsg_verdict_put(nlh, (int)id, verdict);
  verdicts_length += NLMSG_ALIGN(nlh->nlmsg_len);
}

/* ---- the heap of held packets, earliest due first ---- */

static bool before(const struct held *a, const struct held *b) {
  return a->due_ns < b->due_ns || (a->due_ns == b->due_ns && a->sequence < b->sequence);
}

static void heap_push(struct held item) {
  int i = heap_size++;
  while (i > 0) {
    int parent = (i - 1) / 2;
    if (!before(&item, &heap[parent])) break;
    heap[i] = heap[parent];
    i = parent;
  }
  heap[i] = item;
}

static struct held heap_pop(void) {
  struct held top = heap[0];
  struct held last = heap[--heap_size];
  int i = 0;
  for (;;) {
    int child = 2 * i + 1;
    if (child >= heap_size) break;
    if (child + 1 < heap_size && before(&heap[child + 1], &heap[child])) child++;
    if (!before(&heap[child], &last)) break;
    heap[i] = heap[child];
    i = child;
  }
  if (heap_size > 0) heap[i] = last;
  return top;
}

/* ---- releasing packets ---- */

static void release(struct held *item) {
  struct queue *q = &queues[item->queue_index];
  if (item->copy != NULL) {
    struct sockaddr_in to = {.sin_family = AF_INET};
    memcpy(&to.sin_addr, item->copy + 16, 4);
    if (sendto(raw_fd, item->copy, item->length, 0, (struct sockaddr *)&to, sizeof to) < 0) {
      count_resend_failed++; /* a full queue further down, or a drop by the loss rules: a lost packet */
    } else {
      count_resent++;
    }
    held_bytes -= item->length;
    free(item->copy);
    return;
  }
  if (q->has_watermark && (int32_t)(item->id - q->watermark) <= 0) return; /* accepted in bulk already */
  add_verdict(q->number, item->id, NF_ACCEPT, false);
}

static void release_due(uint64_t now) {
  while (heap_size > 0 && heap[0].due_ns <= now) {
    struct held item = heap_pop();
    release(&item);
  }
  flush_verdicts();
}

static void release_all(void) {
  while (heap_size > 0) {
    struct held item = heap_pop();
    release(&item);
  }
  flush_verdicts();
}

/* ---- packets ---- */

static uint32_t flow_slot(uint16_t queue_index, const unsigned char *packet, uint32_t length) {
  uint32_t hash = 2166136261u;
#define MIX(byte) (hash = (hash ^ (byte)) * 16777619u)
  MIX(queue_index & 0xff);
  MIX(queue_index >> 8);
  if (length >= 20 && (packet[0] >> 4) == 4) {
    uint32_t header = (uint32_t)(packet[0] & 0x0f) * 4;
    uint8_t protocol = packet[9];
    MIX(protocol);
    for (int i = 12; i < 20; i++) MIX(packet[i]);
    if ((protocol == IPPROTO_TCP || protocol == IPPROTO_UDP) && length >= header + 4) {
      for (uint32_t i = header; i < header + 4; i++) MIX(packet[i]);
    }
  } else if (length >= 40 && (packet[0] >> 4) == 6) {
    MIX(packet[6]);
    for (int i = 8; i < 40; i++) MIX(packet[i]);
    if ((packet[6] == IPPROTO_TCP || packet[6] == IPPROTO_UDP) && length >= 44) {
      for (int i = 40; i < 44; i++) MIX(packet[i]);
    }
  }
#undef MIX
  return hash % FLOW_SLOTS;
}

static void on_packet(uint16_t queue_number, uint32_t id, const unsigned char *packet, uint32_t length,
                      bool truncated) {
  int16_t index = queue_index_by_number[queue_number];
  if (index < 0) {
    add_verdict(queue_number, id, NF_ACCEPT, false);
    return;
  }
  struct queue *q = &queues[index];
  if (q->resync) {
    /* After an overflow some packets of this queue never reached us; accept them (and, early, the ones
     * we hold) so the kernel queue does not fill up with packets nobody will ever let go. */
    add_verdict(queue_number, id - 1, NF_ACCEPT, true);
    q->watermark = id - 1;
    q->has_watermark = true;
    q->resync = false;
  }
  if (q->loss_ppb > 0 && random_u64() % 1000000000u < q->loss_ppb) {
    count_lost++;
    add_verdict(queue_number, id, NF_DROP, false);
    return;
  }
  if (q->latency_ns == 0 && q->jitter_ns == 0) {
    add_verdict(queue_number, id, NF_ACCEPT, false);
    return;
  }
  uint64_t now = now_ns();
  int64_t delay = (int64_t)q->latency_ns;
  if (q->jitter_ns > 0) delay += (int64_t)(random_u64() % (2 * q->jitter_ns + 1)) - (int64_t)q->jitter_ns;
  uint64_t due = now + (uint64_t)(delay > 0 ? delay : 0);
  uint32_t slot = flow_slot((uint16_t)index, packet, length);
  if (due < flow_last_due[slot]) due = flow_last_due[slot];
  flow_last_due[slot] = due;

  bool resend = q->resend && !truncated && length >= 20 && (packet[0] >> 4) == 4 && length <= mtu &&
                raw_fd >= 0;
  if (heap_size >= HEAP_CAPACITY || (resend && held_bytes + length > max_held_bytes)) {
    count_dropped_full++;
    add_verdict(queue_number, id, NF_DROP, false);
    return;
  }
  struct held item = {.due_ns = due, .sequence = next_sequence++, .id = id, .queue_index = (uint16_t)index};
  if (resend) {
    item.copy = malloc(length);
    if (item.copy == NULL) {
      add_verdict(queue_number, id, NF_ACCEPT, false);
      return;
    }
    memcpy(item.copy, packet, length);
    item.length = length;
    held_bytes += length;
    add_verdict(queue_number, id, NF_DROP, false); /* our copy goes on; the sender's memory is freed now */
  }
  count_delayed++;
  heap_push(item);
}

/* Acknowledgement of the request being waited for: 0 none yet, 1 ok, -errno failed. */
static uint32_t awaited_seq;
static int awaited_result;

static void on_message(const struct nlmsghdr *nlh) {
  if (nlh->nlmsg_type == NLMSG_ERROR) {
    const struct nlmsgerr *error = mnl_nlmsg_get_payload(nlh);
    if (awaited_seq != 0 && nlh->nlmsg_seq == awaited_seq) {
      awaited_result = error->error == 0 ? 1 : error->error;
    } else if (error->error != 0) {
      count_netlink_errors++;
    }
    return;
  }
  if (nlh->nlmsg_type != ((NFNL_SUBSYS_QUEUE << 8) | NFQNL_MSG_PACKET)) return;
  struct nlattr *attr[NFQA_MAX + 1] = {0};
  if (nfq_nlmsg_parse(nlh, attr) < 0 || attr[NFQA_PACKET_HDR] == NULL) return;
  const struct nfgenmsg *nfg = mnl_nlmsg_get_payload(nlh);
  const struct nfqnl_msg_packet_hdr *header = mnl_attr_get_payload(attr[NFQA_PACKET_HDR]);
  uint32_t id = ntohl(header->packet_id);
  const unsigned char *payload = NULL;
  uint32_t length = 0;
  if (attr[NFQA_PAYLOAD] != NULL) {
    payload = mnl_attr_get_payload(attr[NFQA_PAYLOAD]);
    length = mnl_attr_get_payload_len(attr[NFQA_PAYLOAD]);
  }
  bool truncated = attr[NFQA_CAP_LEN] != NULL && ntohl(mnl_attr_get_u32(attr[NFQA_CAP_LEN])) > length;
  on_packet(ntohs(nfg->res_id), id, payload, length, truncated);
}

static struct mmsghdr messages[RECV_BATCH];
static struct iovec vectors[RECV_BATCH];
static unsigned char *buffers[RECV_BATCH];

/* Reads what the kernel has queued for us; returns false once the socket is empty. */
static bool receive_batch(void) {
  for (int i = 0; i < RECV_BATCH; i++) {
    vectors[i].iov_base = buffers[i];
    vectors[i].iov_len = RECV_BUFFER_SIZE;
    memset(&messages[i].msg_hdr, 0, sizeof messages[i].msg_hdr);
    messages[i].msg_hdr.msg_iov = &vectors[i];
    messages[i].msg_hdr.msg_iovlen = 1;
  }
  int count = recvmmsg(netlink_fd, messages, RECV_BATCH, MSG_DONTWAIT, NULL);
  if (count < 0) {
    if (errno == ENOBUFS) {
      /* The socket overflowed and packet messages were lost: resynchronise every queue. */
      count_resyncs++;
      for (int i = 0; i < queue_count; i++) queues[i].resync = true;
      return true;
    }
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return false;
    die("reading from the netfilter queue socket");
  }
  for (int i = 0; i < count; i++) {
    int length = (int)messages[i].msg_len;
    const struct nlmsghdr *nlh = (const struct nlmsghdr *)buffers[i];
    while (mnl_nlmsg_ok(nlh, length)) {
      on_message(nlh);
      nlh = mnl_nlmsg_next(nlh, &length);
    }
  }
  return count == RECV_BATCH;
}

/* ---- configuration requests to the kernel ---- */

static int request(struct nlmsghdr *nlh) {
  nlh->nlmsg_flags |= NLM_F_ACK;
  nlh->nlmsg_seq = next_seq++;
  awaited_seq = nlh->nlmsg_seq;
  awaited_result = 0;
  if (mnl_socket_sendto(netlink, nlh, nlh->nlmsg_len) < 0) return -errno;
  while (awaited_result == 0) {
    struct pollfd pfd = {.fd = netlink_fd, .events = POLLIN};
    if (poll(&pfd, 1, 5000) <= 0) return -ETIMEDOUT;
    receive_batch();
  }
  awaited_seq = 0;
  flush_verdicts();
  return awaited_result == 1 ? 0 : awaited_result;
}

static int bind_queue(uint16_t number) {
  char buffer[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = nfq_nlmsg_put(buffer, NFQNL_MSG_CONFIG, number);
  nfq_nlmsg_cfg_put_cmd(nlh, AF_INET, NFQNL_CFG_CMD_BIND);
  return request(nlh);
}

static int set_queue_params(uint16_t number, bool resend) {
  char buffer[MNL_SOCKET_BUFFER_SIZE];
  struct nlmsghdr *nlh = nfq_nlmsg_put(buffer, NFQNL_MSG_CONFIG, number);
  /* resend needs whole packets with their checksums done; hold needs the headers only. Never GSO
   * packets: the kernel splits them, so each packet on the wire gets its own delay and its own chance of
   * loss (a 64 KiB GSO packet lost at once would be 44 correlated losses). */
  nfq_nlmsg_cfg_put_params(nlh, NFQNL_COPY_PACKET, resend ? 0xffff : 128);
  nfq_nlmsg_cfg_put_qmaxlen(nlh, KERNEL_QUEUE_MAXLEN);
  mnl_attr_put_u32(nlh, NFQA_CFG_FLAGS, htonl(0));
  mnl_attr_put_u32(nlh, NFQA_CFG_MASK, htonl(NFQA_CFG_F_GSO));
  return request(nlh);
}

static void open_netlink(void) {
  netlink = mnl_socket_open(NETLINK_NETFILTER);
  if (netlink == NULL) die("opening a netfilter netlink socket");
  if (mnl_socket_bind(netlink, 0, MNL_SOCKET_AUTOPID) < 0) die("binding the netfilter netlink socket");
  netlink_fd = mnl_socket_get_fd(netlink);
  for (int i = 0; i < RECV_BATCH; i++) {
    buffers[i] = malloc(RECV_BUFFER_SIZE);
    if (buffers[i] == NULL) die("allocating receive buffers");
  }
  int size = 16 << 20;
  if (setsockopt(netlink_fd, SOL_SOCKET, SO_RCVBUFFORCE, &size, sizeof size) < 0) {
    setsockopt(netlink_fd, SOL_SOCKET, SO_RCVBUF, &size, sizeof size);
  }
  fcntl(netlink_fd, F_SETFL, fcntl(netlink_fd, F_GETFL) | O_NONBLOCK);
}

static void read_mtu(void) {
  if (interface_name == NULL) return;
  struct ifreq request = {0};
  strncpy(request.ifr_name, interface_name, IFNAMSIZ - 1);
  int fd = socket(AF_INET, SOCK_DGRAM, 0);
  if (fd >= 0 && ioctl(fd, SIOCGIFMTU, &request) == 0) mtu = (uint32_t)request.ifr_mtu;
  if (fd >= 0) close(fd);
}

static void open_raw_socket(void) {
  raw_fd = socket(AF_INET, SOCK_RAW | SOCK_NONBLOCK, IPPROTO_RAW);
  if (raw_fd < 0) {
    fprintf(stderr, "packet-delayer: no raw socket (%s); holding packets in the kernel instead\n",
            strerror(errno));
    return;
  }
  int mark = RESEND_MARK;
  if (setsockopt(raw_fd, SOL_SOCKET, SO_MARK, &mark, sizeof mark) < 0) die("marking the raw socket");
  int size = 8 << 20;
  if (setsockopt(raw_fd, SOL_SOCKET, SO_SNDBUFFORCE, &size, sizeof size) < 0) {
    setsockopt(raw_fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof size);
  }
  if (interface_name != NULL &&
      setsockopt(raw_fd, SOL_SOCKET, SO_BINDTODEVICE, interface_name, (socklen_t)strlen(interface_name)) < 0) {
    die("binding the raw socket to the interface");
  }
}

/* ---- stdin: the configuration ---- */

static struct queue staged[MAX_QUEUES];
static int staged_count;

static void answer(const char *line) {
  fputs(line, stdout);
  fputc('\n', stdout);
  fflush(stdout);
}

static void commit(void) {
  read_mtu();
  for (int i = 0; i < queue_count; i++) queues[i].configured = false;
  for (int s = 0; s < staged_count; s++) {
    struct queue *wanted = &staged[s];
    int16_t index = queue_index_by_number[wanted->number];
    if (index < 0) {
      if (queue_count >= MAX_QUEUES) {
        answer("error more than 256 queues");
        staged_count = 0;
        return;
      }
      int result = bind_queue(wanted->number);
      if (result < 0) {
        char line[160];
        snprintf(line, sizeof line, "error binding netfilter queue %u: %s", wanted->number, strerror(-result));
        answer(line);
        staged_count = 0;
        return;
      }
      index = (int16_t)queue_count++;
      queue_index_by_number[wanted->number] = index;
      queues[index] = (struct queue){.number = wanted->number};
      queues[index].resend = !wanted->resend; /* forces the parameters below */
    }
    struct queue *q = &queues[index];
    if (q->resend != wanted->resend) {
      int result = set_queue_params(wanted->number, wanted->resend);
      if (result < 0) {
        char line[160];
        snprintf(line, sizeof line, "error configuring netfilter queue %u: %s", wanted->number,
                 strerror(-result));
        answer(line);
        staged_count = 0;
        return;
      }
    }
    q->resend = wanted->resend;
    q->latency_ns = wanted->latency_ns;
    q->jitter_ns = wanted->jitter_ns;
    q->loss_ppb = wanted->loss_ppb;
    q->configured = true;
  }
  /* Queues left out stay bound (unbinding drops what they hold) but no longer delay anything. */
  for (int i = 0; i < queue_count; i++) {
    if (!queues[i].configured) queues[i].latency_ns = queues[i].jitter_ns = queues[i].loss_ppb = 0;
  }
  staged_count = 0;
  answer("ready");
}

static void on_line(char *line) {
  unsigned number;
  unsigned long long latency, jitter, loss;
  char mode[16];
  if (sscanf(line, "queue %u %llu %llu %llu %15s", &number, &latency, &jitter, &loss, mode) == 5 &&
      number < 65536 && loss <= 1000000000u && (strcmp(mode, "hold") == 0 || strcmp(mode, "resend") == 0)) {
    if (staged_count < MAX_QUEUES) {
      staged[staged_count++] = (struct queue){.number = (uint16_t)number,
                                              .latency_ns = latency,
                                              .jitter_ns = jitter,
                                              .loss_ppb = loss,
                                              .resend = strcmp(mode, "resend") == 0};
    }
  } else if (strcmp(line, "commit") == 0) {
    commit();
  } else if (line[0] != '\0') {
    char reply[300];
    snprintf(reply, sizeof reply, "error unknown command: %.200s", line);
    answer(reply);
  }
}

static char input[65536];
static size_t input_length;

/* Returns false at the end of input. */
static bool read_input(void) {
  ssize_t count = read(STDIN_FILENO, input + input_length, sizeof input - input_length - 1);
  if (count == 0) return false;
  if (count < 0) return errno == EAGAIN || errno == EINTR;
  input_length += (size_t)count;
  char *start = input;
  char *newline;
  while ((newline = memchr(start, '\n', input_length - (size_t)(start - input))) != NULL) {
    *newline = '\0';
    on_line(start);
    start = newline + 1;
  }
  input_length -= (size_t)(start - input);
  memmove(input, start, input_length);
  if (input_length == sizeof input - 1) input_length = 0; /* a line too long to be ours */
  return true;
}

static void on_signal(int signal) {
  (void)signal;
  stop_requested = 1;
}

static int probe(void) {
  open_netlink();
  for (int i = 0; i < 65536; i++) queue_index_by_number[i] = -1;
  int result = bind_queue(65000);
  if (result < 0) {
    fprintf(stderr, "packet-delayer: cannot bind a netfilter queue: %s\n", strerror(-result));
    return 1;
  }
  puts("probe ok");
  return 0;
}

int main(int argc, char **argv) {
  long watch_pid = 0;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--probe") == 0) return probe();
    if (strcmp(argv[i], "--interface") == 0 && i + 1 < argc) {
      interface_name = argv[++i];
    } else if (strcmp(argv[i], "--watch-pid") == 0 && i + 1 < argc) {
      watch_pid = strtol(argv[++i], NULL, 10);
    } else if (strcmp(argv[i], "--max-bytes") == 0 && i + 1 < argc) {
      max_held_bytes = strtoull(argv[++i], NULL, 10);
    } else {
      fprintf(stderr,
              "usage: packet-delayer [--interface <name>] [--watch-pid <pid>] [--max-bytes <n>] | --probe\n");
      return 2;
    }
  }
  for (int i = 0; i < 65536; i++) queue_index_by_number[i] = -1;
  random_state = now_ns() ^ ((uint64_t)getpid() << 32) ^ 0x9E3779B97F4A7C15ULL;

  /* Whoever started us (the daemon) going away ends us too, and so does the end of stdin. */
  prctl(PR_SET_PDEATHSIG, SIGTERM);
  prctl(PR_SET_TIMERSLACK, 1UL);
  setpriority(PRIO_PROCESS, 0, -10);
  signal(SIGPIPE, SIG_IGN);
  struct sigaction action = {.sa_handler = on_signal};
  sigaction(SIGTERM, &action, NULL);
  sigaction(SIGINT, &action, NULL);
  sigset_t blocked, during_poll;
  sigemptyset(&blocked);
  sigaddset(&blocked, SIGTERM);
  sigaddset(&blocked, SIGINT);
  sigprocmask(SIG_BLOCK, &blocked, &during_poll);
  sigdelset(&during_poll, SIGTERM);
  sigdelset(&during_poll, SIGINT);

  open_netlink();
  read_mtu();
  open_raw_socket();
  fcntl(STDIN_FILENO, F_SETFL, fcntl(STDIN_FILENO, F_GETFL) | O_NONBLOCK);

  int pid_fd = -1;
  if (watch_pid > 0) {
    pid_fd = (int)syscall(SYS_pidfd_open, (pid_t)watch_pid, 0);
    if (pid_fd < 0 && errno == ESRCH) return 0;
  }

  bool running = true;
  while (running && !stop_requested) {
    struct pollfd fds[3] = {
        {.fd = STDIN_FILENO, .events = POLLIN},
        {.fd = netlink_fd, .events = POLLIN},
        {.fd = pid_fd, .events = POLLIN},
    };
    int nfds = pid_fd >= 0 ? 3 : 2;
    struct timespec timeout, *timeout_pointer = NULL;
    uint64_t now = now_ns();
    if (heap_size > 0) {
      uint64_t wait = heap[0].due_ns > now ? heap[0].due_ns - now : 0;
      timeout.tv_sec = (time_t)(wait / 1000000000u);
      timeout.tv_nsec = (long)(wait % 1000000000u);
      timeout_pointer = &timeout;
    }
    if (watch_pid > 0 && pid_fd < 0 && (timeout_pointer == NULL || timeout.tv_sec >= 1)) {
      timeout = (struct timespec){.tv_sec = 1};
      timeout_pointer = &timeout;
    }
    int ready = ppoll(fds, (nfds_t)nfds, timeout_pointer, &during_poll);
    if (ready < 0 && errno != EINTR) die("waiting for packets");
    if (ready > 0 && (fds[1].revents & POLLIN)) {
      for (int batches = 0; batches < 64 && receive_batch(); batches++) {
        release_due(now_ns());
      }
    }
    if (ready > 0 && (fds[0].revents & (POLLIN | POLLHUP | POLLERR))) running = read_input();
    if (ready > 0 && pid_fd >= 0 && (fds[2].revents & POLLIN)) running = false;
    if (watch_pid > 0 && pid_fd < 0 && kill((pid_t)watch_pid, 0) < 0 && errno == ESRCH) running = false;
    release_due(now_ns());
  }
  /* Whatever we hold leaves now, and so does what the kernel has queued for us (closing the socket would
   * drop it); packets queued after that pass undelayed once the socket is gone (--queue-bypass). */
  for (int i = 0; i < queue_count; i++) queues[i].latency_ns = queues[i].jitter_ns = queues[i].loss_ppb = 0;
  release_all();
  while (receive_batch()) {
  }
  flush_verdicts();
  fprintf(stderr,
          "packet-delayer: exiting; delayed %llu packets (%llu re-sent, %llu lost on re-send), lost %llu "
          "(loss), dropped %llu (held queue full), %llu socket overflows, %llu netlink errors\n",
          (unsigned long long)count_delayed, (unsigned long long)count_resent,
          (unsigned long long)count_resend_failed, (unsigned long long)count_lost,
          (unsigned long long)count_dropped_full,
          (unsigned long long)count_resyncs, (unsigned long long)count_netlink_errors);
  mnl_socket_close(netlink);
  return 0;
}

// The dissectors, in the order the engine tries them on a payload (after those of the server's
// well-known port). Protocols with a strong signature come first, loose formats last, so that a
// loose one cannot claim what a strict one would recognise.
import { bittorrent } from './protocols/bittorrent.js';
import { dhcp } from './protocols/dhcp.js';
import { dns } from './protocols/dns.js';
import { dtls } from './protocols/dtls.js';
import { ftp } from './protocols/ftp.js';
import { gnutella } from './protocols/gnutella.js';
import { http } from './protocols/http.js';
import { imap } from './protocols/imap.js';
import { ipsec } from './protocols/ipsec.js';
import { kafka } from './protocols/kafka.js';
import { kerberos } from './protocols/kerberos.js';
import { ldap } from './protocols/ldap.js';
import { llmnr } from './protocols/llmnr.js';
import { mdns } from './protocols/mdns.js';
import { mqtt } from './protocols/mqtt.js';
import { mysql } from './protocols/mysql.js';
import { netbios } from './protocols/netbios.js';
import { ntp } from './protocols/ntp.js';
import { openvpn } from './protocols/openvpn.js';
import { pop3 } from './protocols/pop3.js';
import { postgres } from './protocols/postgres.js';
import { quic } from './protocols/quic.js';
import { rdp } from './protocols/rdp.js';
import { redis } from './protocols/redis.js';
import { rtsp } from './protocols/rtsp.js';
import { sip } from './protocols/sip.js';
import { slp } from './protocols/slp.js';
import { smb } from './protocols/smb.js';
import { smtp } from './protocols/smtp.js';
import { snmp } from './protocols/snmp.js';
import { ssdp } from './protocols/ssdp.js';
import { ssh } from './protocols/ssh.js';
import { stun } from './protocols/stun.js';
import { syslog } from './protocols/syslog.js';
import { tds } from './protocols/tds.js';
import { telnet } from './protocols/telnet.js';
import { tls } from './protocols/tls.js';
import { wireguard } from './protocols/wireguard.js';
import { xmpp } from './protocols/xmpp.js';
import { zabbix } from './protocols/zabbix.js';
import type { Dissector } from './types.js';

export const DISSECTORS: readonly Dissector[] = [
  tls,
  quic,
  http,
  ssh,
  bittorrent,
  gnutella,
  dns,
  mdns,
  llmnr,
  netbios,
  dhcp,
  ssdp,
  sip,
  rtsp,
  stun,
  dtls,
  wireguard,
  ipsec,
  openvpn,
  smb,
  rdp,
  kerberos,
  ldap,
  slp,
  tds,
  mqtt,
  postgres,
  mysql,
  redis,
  kafka,
  zabbix,
  xmpp,
  smtp,
  imap,
  pop3,
  ftp,
  ntp,
  snmp,
  syslog,
  telnet,
];

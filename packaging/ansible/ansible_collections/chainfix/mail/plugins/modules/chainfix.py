#!/usr/bin/python
# -*- coding: utf-8 -*-

# Copyright: chainfix contributors
# SPDX-License-Identifier: MIT OR Apache-2.0

from __future__ import absolute_import, division, print_function
__metaclass__ = type

DOCUMENTATION = r'''
---
module: chainfix
short_description: Repair the TLS certificate chain a mail server presents
version_added: "0.1.0"
description:
  - Runs C(chainfix repair --json) on the managed host. chainfix finds the leaf certificate and
    its key among O(src), builds the full chain (leaf, then intermediates in issuing order),
    verifies every signature up to a trust anchor, and writes C(fullchain.pem), C(chain.pem),
    C(cert.pem), C(privkey.pem) and, depending on O(emit), configuration snippets for Postfix,
    Exim and IIS into O(dest).
  - All certificate logic lives in the C(chainfix) binary, which must be installed on the
    managed host (see O(binary)). This module only maps options, decides about check mode, diff
    mode, backups and file attributes, and turns the JSON report into task results.
  - The module always starts with a dry run (C(chainfix repair --check)). If chainfix reports
    that a chain cannot be completed or that an error finding remains (exit status 1), or an
    operational failure (exit status 2), the task fails B(before anything is written) with
    C(msg) set to the finding's sentence. This includes leaves whose chain is complete but which
    chainfix would still write, such as an expired leaf or one that does not match O(host);
    deploying them would not make receivers accept the certificate, so the module writes
    nothing and fails. If the real run reports an error nevertheless (the inputs changed in
    between), the task fails and RV(changed) and RV(files) say what was written.
  - A failed task notifies no handlers, so a reload handler only runs after a successful repair
    that changed something.
  - The task is C(changed) when chainfix created or updated a file, or when a file's owner,
    group or mode was changed. A second run with the same inputs reports C(changed=false).
options:
  src:
    description:
      - Certificate files and directories on the managed host (scanned recursively), in PEM,
        DER, PKCS#7 or PKCS#12/PFX, and private keys. Files are recognised by content, not by name.
      - O(dest) may lie inside one of these directories; chainfix does not read its output
        directory as input. Only the diff preview (C(--diff)) does, as it builds elsewhere.
    type: list
    elements: path
    required: true
  dest:
    description:
      - Directory chainfix writes into (C(chainfix repair --out)); created if missing.
      - With one leaf the files go into O(dest); with several, into C(dest/<name>/).
    type: path
    required: true
  binary:
    description:
      - The chainfix executable, a name looked up in E(PATH) (and the sbin directories) or an
        absolute path.
    type: str
    default: chainfix
  key:
    description:
      - The leaf's private key, when it is not among O(src).
    type: path
  emit:
    description:
      - Output targets. Postfix and Exim read the PEM files, so they imply V(pem).
      - When omitted, chainfix writes all targets.
    type: list
    elements: str
    choices: [pem, postfix, exim, iis, all]
  install_dir:
    description:
      - Where the files will live on the mail host; the Postfix and Exim snippets and
        C(README.txt) name files by these paths. Must be absolute.
      - Defaults to the absolute path of O(dest).
    type: path
  include_root:
    description:
      - Append the root certificate to C(fullchain.pem) and C(chain.pem). Receivers do not need it.
    type: bool
    default: false
  roots:
    description:
      - Extra trust anchors, for example a private CA (files or directories).
    type: list
    elements: path
    default: []
  intermediates:
    description:
      - Extra intermediate certificates to build chains from (files or directories).
    type: list
    elements: path
    default: []
  no_default_roots:
    description:
      - Do not trust the Mozilla root store embedded in chainfix; only O(roots) are trust anchors.
    type: bool
    default: false
  offline:
    description:
      - Never fetch missing intermediates over AIA; use only O(src), O(intermediates) and the
        download cache.
    type: bool
    default: false
  cache_dir:
    description:
      - AIA download cache. chainfix's default is C($XDG_CACHE_HOME/chainfix), else
        C(~/.cache/chainfix), of the remote user.
    type: path
  timeout:
    description:
      - Seconds allowed for each AIA request (chainfix's default is 10).
    type: int
  host:
    description:
      - Check that the leaf is valid for this host name (RFC 6125, wildcards included). A
        mismatch is an error finding, so the task fails.
    type: str
  warn_days:
    description:
      - Threshold in days for the C(expires-soon) warning (chainfix's default is 30).
    type: int
  password:
    description:
      - Password of PKCS#12/PFX files among O(src). Passed to chainfix in an environment
        variable (C(--password-env)), never on the command line.
      - Without it the empty password is tried; chainfix never prompts for one under this module.
    type: str
  pfx_password:
    description:
      - Password for C(iis/certificate.pfx). Without it no C(.pfx) is written.
      - Passed to chainfix in an environment variable (C(--pfx-password-env)), never on the
        command line, and never logged.
    type: str
  pfx_legacy:
    description:
      - Write the C(.pfx) with 3DES and a SHA-1 MAC, which Windows Server 2016 and older need.
    type: bool
    default: false
  postfix_legacy:
    description:
      - Postfix older than 3.4, use C(smtpd_tls_cert_file)/C(smtpd_tls_key_file) (and C(smtp_*)).
    type: bool
    default: false
  postfix_single_file:
    description:
      - Postfix 3.4 and later, write the key and the chain into one file,
        C(postfix/key-and-chain.pem).
    type: bool
    default: false
  exim_group:
    description:
      - Group that must read Exim's key, C(exim/privkey.pem) (chainfix's default is
        C(Debian-exim); RHEL uses C(exim)).
    type: str
  trust_private_root:
    description:
      - Let C(iis/install-chain.ps1) import a private root into Trusted Root.
    type: bool
    default: false
  owner:
    description:
      - Owner of every file chainfix wrote or reported, applied after chainfix ran.
    type: str
  group:
    description:
      - Group of every file chainfix wrote or reported, applied after chainfix ran.
      - Not applied to private key files whose group chainfix manages (C(exim/privkey.pem), mode
        0640, group O(exim_group)).
    type: str
  mode:
    description:
      - Permissions of the files that hold no private key, applied after chainfix ran, in any
        form the M(ansible.builtin.file) module accepts (V('0640'), V(u=rw,g=r)).
      - B(Never applied to private key files) (C(privkey.pem), C(exim/privkey.pem),
        C(postfix/key-and-chain.pem), C(*.pfx), and any file chainfix writes without read access
        for others); they keep the modes chainfix gives them (0600, or 0640 for Exim).
      - chainfix itself writes these files 0644 and resets that mode on every real run. The
        module then sets O(mode) again; such a round trip does not count as a change. A file
        whose content changes is briefly 0644 (it holds only certificates or configuration).
    type: raw
  backup:
    description:
      - Before chainfix overwrites a file whose content changes, keep a copy next to it
        (C(NAME.PID.YYYY-MM-DD@HH:MM:SS~), same owner, group and mode; copies of key files are
        never readable by others, even for a moment). The copies are listed in RV(backup_files).
    type: bool
    default: false
  extra_args:
    description:
      - More arguments for C(chainfix repair), passed as they are, after the options above. For
        options this module does not cover, such as C(--max-fetches 8), and for tests
        (C(--at 2030-01-01T00:00:00Z) evaluates validity at a fixed time).
      - C(--out), C(--check), C(--json), C(--install-dir), C(--password-env) and
        C(--pfx-password-env) are managed by the module and refused here. Never put a password
        here; use O(password) and O(pfx_password).
    type: list
    elements: str
    default: []
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
attributes:
  check_mode:
    support: full
    details: Runs C(chainfix repair --check) only and writes nothing to O(dest).
  diff_mode:
    support: full
    details:
      - Shows the before and after text of each file whose content would change. The after
        text comes from a run into a private temporary directory with C(--install-dir) set to
        O(install_dir) (default O(dest)), so the snippets are identical to the ones that will be
        written.
      - Private key files are never shown, only C((private key changed)); binary files show
        C((binary file changed)).
  platform:
    platforms: posix
notes:
  - RV(status) describes what O(src) presents, before the repair; after a successful repair it
    stays V(repairable) as long as the inputs are unchanged. The chain that was written is RV(chain).
  - In check mode combined with diff mode, chainfix writes the after versions, keys included,
    into a temporary directory under the remote C(ANSIBLE_REMOTE_TMP) (mode 0700), which is
    removed before the module returns.
author:
  - chainfix contributors (@chainfix)
'''

EXAMPLES = r'''
- name: Repair the chain Postfix presents
  chainfix.mail.chainfix:
    src:
      - /etc/ssl/mail/mail.example.com.crt
      - /etc/ssl/mail/mail.example.com.key
    dest: /etc/postfix/tls/chainfix
    emit: [postfix]
    backup: true
  notify: Reload Postfix

- name: Private CA, no network, a Debian Exim, and a fixed host name
  chainfix.mail.chainfix:
    src: [/etc/exim4/tls]
    dest: /etc/exim4/chainfix
    emit: [exim]
    roots: [/usr/local/share/ca-certificates/corp-root.crt]
    intermediates: [/usr/local/share/ca-certificates/corp-issuing.crt]
    no_default_roots: true
    offline: true
    host: mx1.corp.example
    mode: "0640"
    group: Debian-exim
  notify: Reload Exim

- name: Also build a PFX for IIS; the password never appears on a command line
  chainfix.mail.chainfix:
    src: [/srv/certs/incoming]
    dest: /srv/certs/iis-bundle
    emit: [iis]
    pfx_password: "{{ vault_pfx_password }}"
    pfx_legacy: true

- name: Only report what would change (also run with --check --diff)
  chainfix.mail.chainfix:
    src: [/etc/postfix/tls]
    dest: /etc/postfix/tls-fixed
  check_mode: true
  register: chainfix_plan

- name: Show the chain that would be served
  ansible.builtin.debug:
    msg: "{{ chainfix_plan.chain | map(attribute='subject') | list }}"
'''

RETURN = r'''
changed:
  description: Whether chainfix created or updated a file, or a file's owner, group or mode changed.
  returned: always
  type: bool
status:
  description:
    - What O(src) presents, as chainfix judges it, V(ok), V(repairable) (serving the built chain
      fixes every error) or V(broken). With several leaves, the worst of them.
  returned: when chainfix found a leaf, also on failure
  type: str
  sample: repairable
chain:
  description:
    - The chain chainfix built for the (first) leaf, leaf first, root last. C(fullchain.pem)
      holds the leaf and intermediates (and the root only with O(include_root)).
  returned: success
  type: list
  elements: dict
  contains:
    subject:
      description: Subject distinguished name.
      type: str
      sample: CN=mail.example.com
    sha256:
      description: SHA-256 fingerprint of the certificate, lower-case hex.
      type: str
    role:
      description: V(leaf), V(intermediate) or V(root).
      type: str
    not_after:
      description: End of validity, RFC 3339.
      type: str
      sample: "2027-02-01T12:00:00Z"
problems:
  description:
    - Every finding about what O(src) presents, for all leaves, as in chainfix's JSON
      (C(code), C(severity), C(cert), C(message), C(receiver_view), C(repairable), and for AIA
      failures C(url) and C(detail)).
  returned: always
  type: list
  elements: dict
  sample:
    - code: missing-intermediate
      severity: error
      message: "The intermediate CN=Example CA is not presented; receivers do not fetch missing intermediates."
      repairable: true
files:
  description:
    - Every file chainfix wrote or found already right, for all leaves.
  returned: success, and on failure when the real run wrote files
  type: list
  elements: dict
  contains:
    path:
      description: Absolute path on the managed host.
      type: str
    action:
      description:
        - chainfix's action, V(created), V(updated), V(mode-fixed) or V(unchanged) (in check
          mode, what it would do). A V(mode-fixed) that O(mode) reverted to the file's previous
          mode is reported as V(unchanged).
      type: str
    changed:
      description: Whether the file's content or attributes changed (would change, in check mode).
      type: bool
    mode:
      description: The file's permissions after the task (chainfix's mode in check mode).
      type: str
      sample: "0644"
    secret:
      description: The file holds a private key; its content is never shown in a diff.
      type: bool
leaves:
  description: One entry per leaf certificate found among O(src).
  returned: success
  type: list
  elements: dict
  contains:
    file:
      description: The input file the leaf was reported for.
      type: str
    leaf:
      description: The leaf certificate (C(subject), C(issuer), C(sha256), C(serial), C(not_before), C(not_after)).
      type: dict
    status:
      description: V(ok), V(repairable) or V(broken).
      type: str
    chain:
      description: Like RV(chain), for this leaf.
      type: list
      elements: dict
    problems:
      description: The findings for this leaf.
      type: list
      elements: dict
    not_written:
      description: Why nothing was written for this leaf, when chainfix wrote nothing.
      type: str
backup_files:
  description: Backup copies made because of O(backup).
  returned: success, and on failure when copies were made
  type: list
  elements: str
  sample: ["/etc/postfix/tls/chainfix/fullchain.pem.4242.2026-11-22@10:00:00~"]
cmd:
  description: The chainfix command line of the run that writes (no secret is ever on it).
  returned: always
  type: list
  elements: str
stderr:
  description: chainfix's standard error (notes and warnings; empty on success).
  returned: on failure
  type: str
rc:
  description: chainfix's exit status (1, error findings remain; 2, operational failure).
  returned: on failure
  type: int
diff:
  description: Before and after text of each file whose content changes, in diff mode.
  returned: in diff mode, when a file changes
  type: list
  elements: dict
'''

import json
import os
import shutil
import tempfile

from ansible.module_utils.basic import AnsibleModule
from ansible.module_utils.common.text.converters import to_text

# Environment variables that carry the passwords to chainfix; argv is visible in ps.
PFX_PASSWORD_ENV = 'ANSIBLE_CHAINFIX_PFX_PASSWORD'
SRC_PASSWORD_ENV = 'ANSIBLE_CHAINFIX_PASSWORD'

MANAGED_FLAGS = ('--out', '--check', '--json', '--install-dir', '--password-env', '--pfx-password-env')
KEY_FILE_NAMES = ('privkey.pem', 'key-and-chain.pem')
KEY_FILE_SUFFIXES = ('.pfx', '.p12', '.key')
CONTENT_ACTIONS = ('created', 'updated')
STATUS_RANK = {'ok': 0, 'repairable': 1, 'broken': 2}
PRIVATE_KEY_CHANGED = '(private key changed)\n'
BINARY_CHANGED = '(binary file changed)\n'


def is_key_file(path, chainfix_mode, secret=None):
    """Private key files: chainfix says so (files[].secret); for older chainfix, known names
    or anything chainfix keeps unreadable by others."""
    if secret is not None:
        return bool(secret)
    name = os.path.basename(path)
    if name in KEY_FILE_NAMES or name.lower().endswith(KEY_FILE_SUFFIXES):
        return True
    try:
        return (int(chainfix_mode, 8) & 0o004) == 0
    except (TypeError, ValueError):
        return False


def chainfix_manages_group(chainfix_mode):
    """chainfix gives some keys a group (exim/privkey.pem, 0640) and resets it on every run."""
    try:
        return (int(chainfix_mode, 8) & 0o040) != 0
    except (TypeError, ValueError):
        return False


def attributes(path):
    try:
        st = os.lstat(path)
    except OSError:
        return None
    return (st.st_uid, st.st_gid, st.st_mode & 0o7777)


def build_args(module, binary, out, install_dir, check):
    p = module.params
    args = [binary, 'repair', '--out', out, '--json']
    if check:
        args.append('--check')
    if p['key']:
        args += ['--key', p['key']]
    if p['emit']:
        args += ['--emit', ','.join(p['emit'])]
    if install_dir:
        args += ['--install-dir', install_dir]
    for path in p['intermediates']:
        args += ['--intermediates', path]
    for path in p['roots']:
        args += ['--roots', path]
    for name, flag in (('include_root', '--include-root'), ('no_default_roots', '--no-default-roots'),
                       ('offline', '--offline'), ('pfx_legacy', '--pfx-legacy'),
                       ('postfix_legacy', '--postfix-legacy'), ('postfix_single_file', '--postfix-single-file'),
                       ('trust_private_root', '--trust-private-root')):
        if p[name]:
            args.append(flag)
    for name, flag in (('cache_dir', '--cache-dir'), ('timeout', '--timeout'), ('host', '--host'),
                       ('warn_days', '--warn-days'), ('exim_group', '--exim-group')):
        if p[name] is not None:
            args += [flag, to_text(p[name])]
    # Always: with a variable set (empty without `password`) chainfix never prompts on a terminal.
    args += ['--password-env', SRC_PASSWORD_ENV]
    if p['pfx_password'] is not None:
        args += ['--pfx-password-env', PFX_PASSWORD_ENV]
    args += p['extra_args']
    # The inputs come last, after "--", so a path starting with "-" is never read as an option.
    args.append('--')
    args += p['src']
    return args


class Runner(object):
    def __init__(self, module, binary, dest):
        self.module = module
        self.binary = binary
        self.dest = dest
        p = module.params
        self.install_dir = p['install_dir']
        self.environ = {SRC_PASSWORD_ENV: p['password'] or ''}
        if p['pfx_password'] is not None:
            self.environ[PFX_PASSWORD_ENV] = p['pfx_password']

    def args(self, out=None, install_dir=None, check=False):
        return build_args(self.module, self.binary, out or self.dest, install_dir or self.install_dir, check)

    def run(self, args):
        rc, out, err = self.module.run_command(args, environ_update=self.environ, expand_user_and_vars=False)
        try:
            doc = json.loads(out)
            if not isinstance(doc, dict):
                doc = None
        except ValueError:
            doc = None
        return rc, doc, err


def slim_chain(chain):
    return [dict((k, c.get(k)) for k in ('subject', 'sha256', 'role', 'not_after')) for c in chain or []]


def summarize(doc):
    """The task result fields that come straight from chainfix's JSON."""
    leaves = []
    problems = []
    worst = None
    for r in (doc or {}).get('results', []):
        leaf = dict(file=r.get('file'), leaf=r.get('leaf'), status=r.get('status'),
                    chain=slim_chain(r.get('chain')), problems=r.get('problems', []))
        if r.get('not_written'):
            leaf['not_written'] = r['not_written']
        leaves.append(leaf)
        problems += r.get('problems', [])
        if worst is None or STATUS_RANK.get(r.get('status'), 2) > STATUS_RANK.get(worst, 2):
            worst = r.get('status')
    out = dict(problems=problems)
    if leaves:
        out.update(leaves=leaves, status=worst, chain=leaves[0]['chain'])
    return out


def planned_files(doc):
    files = []
    for r in (doc or {}).get('results', []):
        for f in r.get('files', []):
            files.append(dict(path=f.get('path'), action=f.get('action'), mode=f.get('mode'), secret=f.get('secret')))
    return files


def first_line(text):
    for line in (text or '').splitlines():
        if line.strip():
            return line.strip()
    return ''


def failure_message(rc, doc, stderr):
    """The sentence a failed repair is reported with."""
    if rc == 1 and doc:
        results = doc.get('results', [])
        bad = [r for r in results if r.get('status') == 'broken' or r.get('not_written')] or results
        for r in bad:
            errors = [p for p in r.get('problems', []) if p.get('severity') == 'error']
            # Prefer a finding the repair cannot fix: "missing intermediate" is repaired anyway.
            lasting = [p for p in errors if not p.get('repairable')]
            for p in lasting + errors:
                if p.get('message'):
                    return p['message']
            if r.get('not_written'):
                return 'chainfix wrote nothing for %s: %s' % ((r.get('leaf') or {}).get('subject'), r['not_written'])
    line = first_line(stderr)
    if line:
        return line
    for e in (doc or {}).get('errors', []):
        return '%s: %s' % (e.get('path'), e.get('message'))
    return 'chainfix exited with status %s' % rc


def read_text(path):
    """The file as text, or None when it is binary."""
    with open(path, 'rb') as f:
        data = f.read()
    if b'\0' in data:
        return None
    try:
        return data.decode('utf-8')
    except UnicodeDecodeError:
        return None


def compute_diff(module, runner, plan):
    changing = [f for f in plan if f['action'] in CONTENT_ACTIONS]
    if not changing:
        return []
    tmp = tempfile.mkdtemp(prefix='chainfix-diff-', dir=module.tmpdir)
    try:
        out_dir = os.path.join(tmp, 'out')
        # The snippets name files by --install-dir, which defaults to --out: pin it to dest.
        rc, doc, err = runner.run(runner.args(out=out_dir, install_dir=runner.install_dir or runner.dest))
        if rc != 0 or doc is None:
            module.warn('chainfix could not build the files for the diff: %s' % failure_message(rc, doc, err))
            return []
        diffs = []
        for f in changing:
            path = f['path']
            before_exists = os.path.exists(path)
            entry = dict(before_header=path, after_header=path)
            if is_key_file(path, f['mode'], f.get('secret')):
                # Never read key material, neither the installed key nor the new one.
                entry['before'] = '(private key)\n' if before_exists else ''
                entry['after'] = PRIVATE_KEY_CHANGED
            else:
                after_path = os.path.join(out_dir, os.path.relpath(path, runner.dest))
                before = read_text(path) if before_exists else ''
                after = read_text(after_path) if os.path.exists(after_path) else ''
                if before is None or after is None:
                    entry['before'] = '(binary file)\n' if before_exists else ''
                    entry['after'] = BINARY_CHANGED
                else:
                    entry['before'] = before
                    entry['after'] = after
            diffs.append(entry)
        return diffs
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def apply_attributes(module, path, chainfix_mode, secret=None):
    """Sets owner/group/mode as asked (respecting key files); returns True if anything changed."""
    p = module.params
    changed = False
    key = is_key_file(path, chainfix_mode, secret)
    if p['owner'] is not None:
        changed = module.set_owner_if_different(path, p['owner'], changed)
    if p['group'] is not None and not (key and chainfix_manages_group(chainfix_mode)):
        changed = module.set_group_if_different(path, p['group'], changed)
    if p['mode'] is not None and not key:
        changed = module.set_mode_if_different(path, p['mode'], changed)
    return changed


def fail(module, rc, doc, stderr, cmd, wrote=False, backup_files=None):
    """Fails the task with the sentence that matters first, and only what helps to act on it.

    wrote: doc comes from the real run (which may have written files), not from the dry run."""
    summary = summarize(doc)
    files = []
    if wrote:
        files = [dict(path=f['path'], action=f['action'], changed=f['action'] != 'unchanged', mode=f['mode'], secret=f.get('secret'))
                 for f in planned_files(doc)]
    extra = dict(rc=rc, stderr=stderr, cmd=cmd, problems=summary['problems'],
                 changed=any(f['changed'] for f in files))
    if 'status' in summary:
        extra['status'] = summary['status']
    if any(f['changed'] for f in files):
        extra['files'] = files
    if backup_files:
        extra['backup_files'] = backup_files
    module.fail_json(msg=failure_message(rc, doc, stderr), **extra)


def octal_mode(path, fallback):
    attrs = attributes(path)
    return '%04o' % attrs[2] if attrs else fallback


def main():
    module = AnsibleModule(
        argument_spec=dict(
            src=dict(type='list', elements='path', required=True),
            dest=dict(type='path', required=True),
            binary=dict(type='str', default='chainfix'),
            key=dict(type='path'),
            emit=dict(type='list', elements='str', choices=['pem', 'postfix', 'exim', 'iis', 'all']),
            install_dir=dict(type='path'),
            include_root=dict(type='bool', default=False),
            roots=dict(type='list', elements='path', default=[]),
            intermediates=dict(type='list', elements='path', default=[]),
            no_default_roots=dict(type='bool', default=False),
            offline=dict(type='bool', default=False),
            cache_dir=dict(type='path'),
            timeout=dict(type='int'),
            host=dict(type='str'),
            warn_days=dict(type='int'),
            password=dict(type='str', no_log=True),
            pfx_password=dict(type='str', no_log=True),
            pfx_legacy=dict(type='bool', default=False),
            postfix_legacy=dict(type='bool', default=False),
            postfix_single_file=dict(type='bool', default=False),
            exim_group=dict(type='str'),
            trust_private_root=dict(type='bool', default=False),
            owner=dict(type='str'),
            group=dict(type='str'),
            mode=dict(type='raw'),
            backup=dict(type='bool', default=False),
            extra_args=dict(type='list', elements='str', default=[]),
        ),
        mutually_exclusive=[('postfix_legacy', 'postfix_single_file')],
        supports_check_mode=True,
    )
    p = module.params

    if not p['src']:
        module.fail_json(msg='src must name at least one file or directory')
    for arg in p['extra_args']:
        if arg.split('=', 1)[0] in MANAGED_FLAGS:
            module.fail_json(msg='extra_args must not contain %s: the module sets it' % arg.split('=', 1)[0])
    if p['install_dir'] is not None and not os.path.isabs(p['install_dir']):
        module.fail_json(msg='install_dir must be an absolute path: %s' % p['install_dir'])

    binary = module.get_bin_path(p['binary'], required=True)

    # dest may lie inside src: chainfix does not read its --out directory as input. The diff
    # preview builds into a temporary directory instead, and so does read dest there.
    dest = os.path.abspath(p['dest'])
    for src in p['src']:
        src_abs = os.path.abspath(src)
        if module._diff and os.path.isdir(src_abs) and (dest + os.sep).startswith(src_abs.rstrip(os.sep) + os.sep):
            module.warn('dest %s is inside src %s: the diff preview reads the files in dest (and any backups) as input' % (dest, src))

    runner = Runner(module, binary, dest)
    write_args = runner.args()
    result = dict(changed=False, cmd=write_args, files=[], backup_files=[], problems=[])

    # 1. Dry run: what would change, and whether the repair can succeed at all.
    rc, plan_doc, err = runner.run(runner.args(check=True))
    if rc != 0 or plan_doc is None:
        fail(module, rc, plan_doc, err, write_args)
    result.update(summarize(plan_doc))
    plan = planned_files(plan_doc)

    # 2. Diff: the after text comes from a run into a private temporary directory.
    if module._diff:
        diffs = compute_diff(module, runner, plan)
        if diffs:
            result['diff'] = diffs

    if module.check_mode:
        files = []
        for f in plan:
            path, action = f['path'], f['action']
            exists = os.path.exists(path)
            if action in CONTENT_ACTIONS or not exists:
                changed = True
            else:
                # set_*_if_different only report in check mode.
                attrs_differ = apply_attributes(module, path, f['mode'], f.get('secret'))
                if action == 'mode-fixed':
                    if p['mode'] is not None and not is_key_file(path, f['mode'], f.get('secret')):
                        # chainfix resets its mode, the module sets `mode` again.
                        changed = attrs_differ
                        if not changed:
                            action = 'unchanged'
                    else:
                        changed = True
                else:
                    changed = attrs_differ
            files.append(dict(path=path, action=action, changed=changed, mode=f['mode'], secret=f.get('secret')))
            result['changed'] = result['changed'] or changed
        result['files'] = files
        module.exit_json(**result)

    # 3. Backups of files whose content chainfix is about to replace.
    if p['backup']:
        old_umask = os.umask(0o077)  # a key's copy is never readable by others, even before its chmod
        try:
            for f in plan:
                if f['action'] == 'updated' and os.path.exists(f['path']):
                    backup = module.backup_local(f['path'])
                    if backup:
                        result['backup_files'].append(backup)
        finally:
            os.umask(old_umask)

    before = dict((f['path'], attributes(f['path'])) for f in plan)

    # 4. The real run, unless chainfix said nothing would be written.
    doc = plan_doc
    if any(r.get('changed') for r in plan_doc.get('results', [])):
        rc, doc, err = runner.run(write_args)
        if rc != 0 or doc is None:
            fail(module, rc, doc, err, write_args, wrote=True, backup_files=result['backup_files'])
        result.update(summarize(doc))

    # 5. Attributes, and what changed in the end.
    files = []
    for f in planned_files(doc):
        path, action = f['path'], f['action']
        if os.path.exists(path):
            apply_attributes(module, path, f['mode'], f.get('secret'))
        changed = action in CONTENT_ACTIONS or before.get(path) != attributes(path)
        if action == 'mode-fixed' and not changed:
            action = 'unchanged'
        files.append(dict(path=path, action=action, changed=changed, mode=octal_mode(path, f['mode']), secret=f.get('secret')))
        result['changed'] = result['changed'] or changed
    result['files'] = files
    module.exit_json(**result)


if __name__ == '__main__':
    main()

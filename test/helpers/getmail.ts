// getmail6 for interop tests. getmail6 6.18 waits for its per-message delivery child with a
// SIGCHLD handler and a threading.Condition: the handler is installed after fork() and may notify
// before the wait starts, so a fast child is missed and the run dies with "waiting child pid N
// timed out" (seen in bench/fetch.ts). This wrapper runs the unmodified /usr/bin/getmail with one
// change: the parent waits with a blocking waitpid(). Same fork, same delivery, same order.
// getmail refuses to deliver as root, so tests run it as nobody (setpriv).
export const GETMAIL_WAITPID_WRAPPER = [
  'import os, runpy, sys',
  'from getmailcore import baseclasses as b',
  'def forkchild(self, childfun, with_out=True):',
  '    self.child = child = b.Namespace()',
  '    child.stdout = b.TemporaryFile23()',
  '    child.stderr = b.TemporaryFile23()',
  '    child.childpid = os.fork()',
  '    if child.childpid != 0:',
  '        _, status = os.waitpid(child.childpid, 0)',
  '        if not os.WIFEXITED(status):',
  "            raise b.getmailOperationError('child pid %d failed to exit' % child.childpid)",
  '        child.exitcode = os.WEXITSTATUS(status)',
  '        child.stderr.seek(0)',
  '        child.err = child.stderr.read().strip().decode()',
  '        child.stdout.seek(0)',
  '        if with_out:',
  '            child.out = child.stdout.read().strip()',
  '        return child',
  '    childfun(child.stdout, child.stderr)',
  'b.ForkingBase.forkchild = forkchild',
  "sys.argv[0] = '/usr/bin/getmail'",
  "runpy.run_path('/usr/bin/getmail', run_name='__main__')",
  '',
].join('\n');

/** nobody's uid/gid (65534 on Debian). */
export const NOBODY = 65534;

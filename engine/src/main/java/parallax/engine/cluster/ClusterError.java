package parallax.engine.cluster;

import parallax.engine.UserError;

/**
 * A failure of the distributed runtime that a user can act on: a rank died, a collective
 * timed out, a node was unreachable, the rendezvous port was taken. The message is one
 * line naming the rank, the host and the cause.
 */
public class ClusterError extends UserError {

    public ClusterError(String message) {
        super(message);
    }

    public ClusterError(String message, Throwable cause) {
        super(message, cause);
    }
}

r"""All-sizes proofs: the constructions' identities with symbolic sizes ``d``, ``n`` (block algebra).

The fixed-size proofs of :func:`lsa_theory.constructions.derive.prove` write every prompt entry as a symbol
and so
prove one ``(d, n)`` at a time. Here the prompt is a ``sympy.BlockMatrix`` of ``MatrixSymbol``\ s
whose shapes are the positive integer symbols ``d``, ``n`` (``d_pi``, ``N``): ``Phi`` (d x n) has
the columns ``phi_i``, ``Phi_next`` (d x n) the columns ``phi_i^+`` (undiscounted), ``r`` (n x 1)
the rewards, ``w`` (d x 1) the parameters. The block is applied with ``sympy.block_collapse`` and
each output block minus its target is reduced to the normal form of
:mod:`lsa_theory.constructions.matrix_words` (words in the matrix symbols with scalar coefficients, canonical
transposes of scalar sub-words). A claim is proved for **every** ``d, n >= 1`` and every value of
the scalar symbols (``alpha``, ``beta``, ``gamma``, ``eta``, any ``c != 0``) when every block's
normal form is empty. Multi-layer claims are proved by induction: the function checks the
induction step (one layer maps the invariant prompt at parameter ``w`` to the invariant prompt at
the updated parameter, the whole output matrix) and the base case; the argument is stated in each
docstring.

In matrix form the batch updates read ``delta(w) = r + gamma Phi_next^T w - Phi^T w`` (n x 1, the
TD errors ``delta_i``) and ``(1/n) sum_i delta_i phi_i = (1/n) Phi delta(w)``; that the matrix
form is the per-sample loop is the definition of the matrix product (the fixed-size rows check
it against the naive loops of :mod:`lsa_theory.reference`).

Claims: (L2), (S4), (S5), (A4), (W3) for the project's constructions (the block forms equal
:mod:`lsa_theory.constructions.numeric` at concrete sizes, see the tests); (W4), (W5), (W6), (R2), (R3)
prove docs/theory.md's statements for the block matrices written here (``td_blocks`` with a generic
``C``, a generic mask, ``residual_gradient_blocks``, ``regression_blocks``). Each ``prove_*``
returns a :class:`~lsa_theory.constructions.symbolic.SymbolicProof` with ``n_entries`` = the number of blocks
compared and ``nonzero`` = the number whose residual is not zero. Method and scope: docs/proofs.md.
(W7) (two heads, a running-mean mask) is proved by the same method in
:mod:`lsa_theory.constructions.symbolic_sizes_w7`.
"""

from __future__ import annotations

import time
from typing import Any

import sympy as sp
from sympy import BlockMatrix, Identity, MatrixSymbol, ZeroMatrix, block_collapse

from lsa_theory.checks import check_int

from .matrix_words import Obligation, atoms_of, collapse, normal_form
from .symbolic import SymbolicProof, alpha_s, beta_s, c_s, gamma_s

__all__ = [
    "d_s",
    "n_s",
    "d_pi_s",
    "N_s",
    "eta_s",
    "lsa_block_expr",
    "masked_block_expr",
    "td_errors_expr",
    "sarsa_prompt_expr",
    "sarsa_update_expr",
    "actor_critic_prompt_expr",
    "td_prompt_expr",
    "sarsa_blocks",
    "actor_critic_blocks",
    "td_blocks",
    "residual_gradient_blocks",
    "regression_blocks",
    "prove_lemma_c1_all_sizes",
    "prove_sarsa_all_sizes",
    "prove_sarsa_stack_all_sizes",
    "prove_sarsa_composition_all_sizes",
    "prove_actor_critic_all_sizes",
    "prove_td_all_sizes",
    "prove_td_preconditioned_all_sizes",
    "prove_residual_gradient_all_sizes",
    "prove_td_lambda_all_sizes",
]

d_s, n_s = sp.symbols("d n", integer=True, positive=True)
d_pi_s = sp.Symbol("d_pi", integer=True, positive=True)
N_s = sp.Symbol("N", integer=True, positive=True)
eta_s = sp.Symbol("eta", real=True)

Phi = MatrixSymbol("Phi", d_s, n_s)
Phi_next = MatrixSymbol("Phi_next", d_s, n_s)
r_vec = MatrixSymbol("r", n_s, 1)
w_vec = MatrixSymbol("w", d_s, 1)
G = MatrixSymbol("G", d_pi_s, n_s)
lam_vec = MatrixSymbol("lambda", d_pi_s, 1)
q_vec = MatrixSymbol("q", d_s, 1)
ONE = Identity(1)

#: Row blocks of (H): phi, gamma phi^+, reward, constant, w; column blocks: context, parameter.
H_ROWS, H_COLS = (d_s, d_s, 1, 1, d_s), (n_s, 1)
#: Row blocks of (A1): psi, gamma psi^+, reward, score g, constant, w, lambda.
A_ROWS = (d_s, d_s, 1, d_pi_s, 1, d_s, d_pi_s)
#: Row blocks of (W1): phi, gamma phi', reward / value row; column blocks: context, query.
W_ROWS = (d_s, d_s, 1)


def _grid(rows, cols, entries: dict) -> BlockMatrix:
    """Block matrix with the given blocks ``entries[(i, j)]`` and zero blocks elsewhere."""
    return BlockMatrix(
        [[entries.get((i, j), ZeroMatrix(rr, cc)) for j, cc in enumerate(cols)] for i, rr in enumerate(rows)]
    )


def lsa_block_expr(H, P, V, n=n_s):
    """(L1) as a matrix expression: ``H + (1/n) (V H)(H^T P H)``."""
    return H + V * H * H.T * P * H / n


def masked_block_expr(Z, P, Q, n=n_s, mask=None):
    """(W2) as a matrix expression: ``Z + (1/n) P Z M Z^T Q Z`` with ``M = diag(mask, 0)`` (one
    query; ``mask`` n x n, default ``I_n``; (W5) uses a lower-triangular decaying mask)."""
    M = _grid((n, 1), (n, 1), {(0, 0): Identity(n) if mask is None else mask})
    return Z + P * Z * M * Z.T * Q * Z / n


def td_errors_expr(w):
    """The TD errors ``delta(w) = r + gamma Phi_next^T w - Phi^T w`` (n x 1) of (S2)/(W3)."""
    return r_vec + gamma_s * Phi_next.T * w - Phi.T * w


def sarsa_prompt_expr(w) -> BlockMatrix:
    """(H) with parameter block ``w`` (any d x 1 expression): rows ``(d | d | 1 | 1 | d)``,
    columns ``(n | 1)``; context ``[Phi; gamma Phi_next; r^T]``, parameter column ``[0; 1; w]``."""
    return _grid(
        H_ROWS,
        H_COLS,
        {(0, 0): Phi, (1, 0): gamma_s * Phi_next, (2, 0): r_vec.T, (3, 1): ONE, (4, 1): w},
    )


def sarsa_update_expr(w, alpha=alpha_s):
    """(S2) in matrix form: ``w + (alpha/n) Phi delta(w)`` (d x 1)."""
    return w + alpha / n_s * Phi * td_errors_expr(w)


def sarsa_blocks(alpha=alpha_s, c=c_s) -> tuple[BlockMatrix, BlockMatrix]:
    """``(c P*, V*/c)`` of (S3) on the (H) row blocks: ``P[phi, w] = -c I``, ``P[phi+, w] = c I``,
    ``P[r, 1] = c``, ``V[w, phi] = (alpha/c) I``, every other block zero."""
    P = _grid(H_ROWS, H_ROWS, {(0, 4): -c * Identity(d_s), (1, 4): c * Identity(d_s), (2, 3): c * ONE})
    V = _grid(H_ROWS, H_ROWS, {(4, 0): alpha / c * Identity(d_s)})
    return P, V


def actor_critic_blocks(alpha=alpha_s, beta=beta_s, c=c_s) -> tuple[BlockMatrix, BlockMatrix]:
    """``(c P*, V*/c)`` of (A3) on the (A1) row blocks: P12* as in (S3) (zero on the score rows
    and the lambda column), ``V[w, psi] = (alpha/c) I_d``, ``V[lambda, g] = (beta/c) I_{d_pi}``."""
    P = _grid(A_ROWS, A_ROWS, {(0, 5): -c * Identity(d_s), (1, 5): c * Identity(d_s), (2, 4): c * ONE})
    V = _grid(A_ROWS, A_ROWS, {(5, 0): alpha / c * Identity(d_s), (6, 3): beta / c * Identity(d_pi_s)})
    return P, V


def td_blocks(C) -> tuple[BlockMatrix, BlockMatrix]:
    """(W3)/(W4) on the (W1) row blocks: ``P = e_D e_D^T``; ``Q`` zero except its top-left
    blocks ``Q[phi, phi] = -C^T``, ``Q[phi, phi'] = C^T`` (``C`` d x d; (W3): ``C = alpha I``)."""
    P = _grid(W_ROWS, W_ROWS, {(2, 2): ONE})
    Q = _grid(W_ROWS, W_ROWS, {(0, 0): -C.T, (0, 1): C.T})
    return P, Q


def residual_gradient_blocks(alpha=alpha_s) -> tuple[BlockMatrix, BlockMatrix]:
    """(W6), our matrix form: ``P = e_D e_D^T``, ``Q`` zero except its top-left ``2d x 2d``
    block ``alpha [[-I, I], [I, -I]]``, so that ``z_i^T Q z_j = alpha (phi_i - gamma phi_i')^T
    (gamma phi_j' - phi_j)``."""
    a = alpha * Identity(d_s)
    P = _grid(W_ROWS, W_ROWS, {(2, 2): ONE})
    Q = _grid(W_ROWS, W_ROWS, {(0, 0): -a, (0, 1): a, (1, 0): a, (1, 1): -a})
    return P, Q


def regression_blocks(A) -> tuple[BlockMatrix, BlockMatrix]:
    """(R2)/(R3) on the (R1) row blocks ``(d | 1)``: ``P = e_{d+1} e_{d+1}^T``, ``Q = [[-A, 0],
    [0, 0]]`` (``A`` d x d; (R2) is ``A = -eta I``)."""
    rows = (d_s, 1)
    return _grid(rows, rows, {(1, 1): ONE}), _grid(rows, rows, {(0, 0): -A})


def _proof(claim: str, sizes: dict, residuals: list, t0: float, extra_nonzero: int = 0) -> SymbolicProof:
    nonzero = sum(1 for res in residuals if res) + extra_nonzero
    return SymbolicProof(claim, sizes, len(residuals), nonzero, time.perf_counter() - t0)


def _prove(claim: str, sizes: dict, obligations: list, t0: float, extra_nonzero: int = 0) -> SymbolicProof:
    """The proof of ``claim``: every :class:`~lsa_theory.constructions.matrix_words.Obligation` reduced
    blockwise."""
    residuals = [res for ob in obligations for res in ob.residuals()]
    return _proof(claim, sizes, residuals, t0, extra_nonzero)


def _lsa_step(what, H, P, V, target, rows) -> Obligation:
    return Obligation(what, lsa_block_expr(H, P, V), target, rows, H_COLS, H, (("lsa", (P, V), None),))


ALL = {"d": "all", "n": "all"}
ALL_L = {"d": "all", "n": "all", "L": "all (induction)"}


def lemma_c1_obligations() -> tuple[list[Obligation], Any]:
    """(L2)'s obligation (the readout block of one (L1) layer with arbitrary ``P``, ``V`` blocks
    against the statistics formula) and the readout expression (for the stray-block check)."""
    m = 2 * d_s + 1
    rows, tags = (m, 1, d_s), ("x", "1", "w")
    X = MatrixSymbol("X", m, n_s)
    P = [
        [MatrixSymbol(f"P_{a}{b}", ra, rb) for b, rb in zip(tags, rows, strict=True)]
        for a, ra in zip(tags, rows, strict=True)
    ]
    V = [
        [MatrixSymbol(f"V_{a}{b}", ra, rb) for b, rb in zip(tags, rows, strict=True)]
        for a, ra in zip(tags, rows, strict=True)
    ]
    H = _grid(rows, (n_s, 1), {(0, 0): X, (1, 1): ONE, (2, 1): w_vec})
    Pb, Vb = BlockMatrix(P), BlockMatrix(V)
    lhs = lsa_block_expr(H, Pb, Vb)
    wt = BlockMatrix([[ONE], [w_vec]])
    P12, P22 = BlockMatrix([[P[0][1], P[0][2]]]), BlockMatrix([P[1][1:], P[2][1:]])
    Vb21, Vb22 = V[2][0], BlockMatrix([[V[2][1], V[2][2]]])
    Sigma = X * X.T / n_s
    formula = block_collapse(w_vec + Vb21 * Sigma * P12 * wt + Vb22 * wt * wt.T * P22 * wt / n_s)
    ob = Obligation("readout", lhs, formula, (d_s,), (1,), H, (("lsa", (Pb, Vb), None),), select=(2, 1))
    return [ob], collapse(lhs).blocks[2, 1]


def prove_lemma_c1_all_sizes() -> SymbolicProof:
    """(L2) for every d, n and arbitrary ``P``, ``V``: the (L1) readout (last d entries of the
    parameter column) equals ``w + Vbar21 Sigma P12 wt + (1/n) Vbar22 wt wt^T P22 wt``.

    Rows and columns of ``P``, ``V`` split as ``(2d+1 | 1 | d)`` (the (L2) split with its second
    block cut into the constant row and the w rows); each of the 9 blocks of ``P`` and of ``V`` is
    its own matrix symbol, the context is one symbol ``X`` ((2d+1) x n), ``Sigma = X X^T / n``,
    ``wt = [1; w]``. Also checked: the readout's normal form contains no block of ``P`` or ``V``
    other than those of ``P12``, ``P22``, ``Vbar21``, ``Vbar22`` (a stray block counts as one
    more non-zero entry). One residual block (d x 1)."""
    t0 = time.perf_counter()
    obligations, readout = lemma_c1_obligations()
    allowed = {"X", "w", "P_x1", "P_xw", "P_11", "P_1w", "P_w1", "P_ww", "V_wx", "V_w1", "V_ww"}
    stray = atoms_of(normal_form(readout)) - allowed
    return _prove("(L2)", dict(ALL), obligations, t0, extra_nonzero=int(bool(stray)))


def sarsa_obligations(w=w_vec, c=c_s) -> list[Obligation]:
    """(S4)'s obligation: one layer ``(c P*, V*/c)`` on ``H(z; w)`` equals ``H(z; w_SARSA)``."""
    P, V = sarsa_blocks(alpha_s, c)
    return [_lsa_step("layer", sarsa_prompt_expr(w), P, V, sarsa_prompt_expr(sarsa_update_expr(w)), H_ROWS)]


def sarsa_stack_obligations() -> list[Obligation]:
    """(S5)'s induction step: :func:`sarsa_obligations` at a fresh ``w_l`` and a fresh scale ``c_l``."""
    return sarsa_obligations(MatrixSymbol("w_l", d_s, 1), sp.Symbol("c_l", real=True))


def sarsa_composition_obligations(n_layers: int = 2) -> list[Obligation]:
    """(S5) for one fixed L: ``n_layers`` layers with scales ``c_1 .. c_L`` on ``H(z; w)``."""
    n_layers = check_int(n_layers, "n_layers")
    out, target, layers = sarsa_prompt_expr(w_vec), w_vec, []
    for layer in range(n_layers):  # collapsed layer by layer (3x faster than once at the end)
        P, V = sarsa_blocks(alpha_s, sp.Symbol(f"c_{layer + 1}", real=True))
        out = block_collapse(lsa_block_expr(out, P, V))
        layers.append(("lsa", (P, V), None))
        target = sarsa_update_expr(target)
    H, rhs = sarsa_prompt_expr(w_vec), sarsa_prompt_expr(target)
    return [Obligation(f"{n_layers} layers", out, rhs, H_ROWS, H_COLS, H, tuple(layers))]


def prove_sarsa_all_sizes() -> SymbolicProof:
    """(S4) for every d, n, alpha and c != 0: one layer ``(c P*, V*/c)`` of (S3) maps ``H(z; w)``
    to ``H(z; w_SARSA)``, ``w_SARSA = w + (alpha/n) Phi (r + gamma Phi_next^T w - Phi^T w)`` (S2):
    the whole output matrix (10 blocks), so the context columns and the constant row are
    unchanged and the readout is the batch SARSA update."""
    t0 = time.perf_counter()
    return _prove("(S4)", dict(ALL), sarsa_obligations(), t0)


def prove_sarsa_stack_all_sizes() -> SymbolicProof:
    """(S5) for every d, n and every number of layers L, by induction on L.

    Invariant after l layers: the prompt is ``H(z; w_l)`` with ``w_l`` = l batch-SARSA
    iterations (S2) from ``w_0`` on the same batch. Base (l = 0): the input is ``H(z; w_0)`` by
    definition. Step (checked here, whole output matrix): for an arbitrary parameter block
    ``w_l`` (d x 1 matrix symbol, standing for whatever the previous layers produced) and the
    layer's own scale ``c_l != 0``, one layer ``(c_l P*, V*/c_l)`` maps ``H(z; w_l)`` to
    ``H(z; w_l + (alpha/n) Phi delta(w_l))`` = ``H(z; w_{l+1})``; the context and the constant
    row, which the next layer reads, are exactly those of the input. Hence L layers output
    ``H(z; w_L)``, and the readout is the L-th SARSA iterate."""
    t0 = time.perf_counter()
    return _prove("(S5)", dict(ALL_L), sarsa_stack_obligations(), t0)


def prove_sarsa_composition_all_sizes(n_layers: int = 2) -> SymbolicProof:
    """(S5) without induction for one fixed L: ``n_layers`` layers with their own scales
    ``c_1 .. c_L`` composed explicitly in block algebra equal ``H(z; S^L(w))`` for every d, n
    (``S`` the map (S2)); a corroboration of the induction, whose cost grows like 3^L."""
    t0 = time.perf_counter()
    obligations = sarsa_composition_obligations(n_layers)
    return _prove("(S5)", {**ALL, "L": check_int(n_layers, "n_layers")}, obligations, t0)


def actor_critic_prompt_expr(w, lam) -> BlockMatrix:
    """(A1) with parameter blocks ``w`` (d x 1), ``lam`` (d_pi x 1): context ``[Phi; gamma
    Phi_next; r^T; G]`` (``G`` d_pi x n, columns the scores ``g_i``), parameter column
    ``[0; 1; w; lambda]``."""
    return _grid(
        A_ROWS,
        H_COLS,
        {
            (0, 0): Phi,
            (1, 0): gamma_s * Phi_next,
            (2, 0): r_vec.T,
            (3, 0): G,
            (4, 1): ONE,
            (5, 1): w,
            (6, 1): lam,
        },
    )


def prove_actor_critic_all_sizes() -> SymbolicProof:
    """(A4) for every d, d_pi, n, alpha, beta and c != 0: one layer ``(c P*, V*/c)`` of (A3)
    maps the (A1) prompt to the same prompt with ``[w'; lambda']`` of (A2),
    ``w' = w + (alpha/n) Phi delta(w)``, ``lambda' = lambda + (beta/n) G delta(w)`` (whole output,
    14 blocks). The feature rows are the symbol ``Phi`` whatever they hold: the identity is the
    same for the state-value critic (columns ``psi(s_i)``, the default) and for the action-value
    critic (columns ``phi(s_i, a_i)``), since nothing in it depends on what the columns contain.
    ``d_pi >= 1``; ``d_pi = 0`` is (S4)."""
    t0 = time.perf_counter()
    return _prove("(A4)", {**ALL, "d_pi": "all"}, actor_critic_obligations(), t0)


def actor_critic_update_expr(w, lam):
    """(A2) in matrix form: ``(w + (alpha/n) Phi delta(w), lambda + (beta/n) G delta(w))``."""
    delta = td_errors_expr(w)
    return w + alpha_s / n_s * Phi * delta, lam + beta_s / n_s * G * delta


def actor_critic_obligations() -> list[Obligation]:
    """(A4)'s obligation: one layer of (A3) on the (A1) prompt equals the prompt at (A2)'s update."""
    P, V = actor_critic_blocks()
    target = actor_critic_prompt_expr(*actor_critic_update_expr(w_vec, lam_vec))
    return [_lsa_step("layer", actor_critic_prompt_expr(w_vec, lam_vec), P, V, target, A_ROWS)]


def td_prompt_expr(w) -> BlockMatrix:
    """The (W3) invariant prompt at parameter ``w``: (W1) with its last row replaced by
    ``[delta(w)^T, -q^T w]`` (rows ``(d | d | 1)``, columns ``(n | 1)``, ``q`` = phi(s) of the
    query). At ``w = 0`` it is the (W1) prompt itself."""
    return _grid(
        W_ROWS,
        H_COLS,
        {
            (0, 0): Phi,
            (0, 1): q_vec,
            (1, 0): gamma_s * Phi_next,
            (2, 0): td_errors_expr(w).T,
            (2, 1): -q_vec.T * w,
        },
    )


def td_induction_obligations(P, Q, update, mask=None) -> list[Obligation]:
    """Base ``td_prompt_expr(0) = (W1)`` and step ``TF(td_prompt_expr(w)) = td_prompt_expr(update(w))``
    of the (W3)-(W6) inductions, one masked layer ``(P, Q)`` with context mask ``mask`` (None: I_n)."""
    W1 = _grid(W_ROWS, H_COLS, {(0, 0): Phi, (0, 1): q_vec, (1, 0): gamma_s * Phi_next, (2, 0): r_vec.T})
    base = Obligation("base", td_prompt_expr(ZeroMatrix(d_s, 1)), W1, W_ROWS, H_COLS)
    Z = td_prompt_expr(w_vec)
    lhs = masked_block_expr(Z, P, Q, mask=mask)
    layers = (("masked", (P, Q), mask),)
    step = Obligation("step", lhs, td_prompt_expr(update(w_vec)), W_ROWS, H_COLS, Z, layers)
    return [base, step]


def td_update_expr(w):
    """(W3)'s step in matrix form: ``w + (alpha/n) Phi delta(w)``."""
    return w + alpha_s / n_s * Phi * td_errors_expr(w)


def td_precond_update_expr(w, C=None):
    """(W4)'s step: ``w + C (1/n) Phi delta(w)`` (``C`` default the d x d matrix symbol ``C``)."""
    C = MatrixSymbol("C", d_s, d_s) if C is None else C
    return w + C * Phi * td_errors_expr(w) / n_s


def residual_gradient_update_expr(w):
    """(W6)'s step: ``w + (alpha/n) (Phi - gamma Phi_next) delta(w)``."""
    return w + alpha_s / n_s * (Phi - gamma_s * Phi_next) * td_errors_expr(w)


def td_lambda_update_expr(w, M=None):
    """(W5)'s step: ``w + (alpha/n) Phi M_n^T delta(w)`` (``M_n`` default the n x n symbol ``M_n``)."""
    M = MatrixSymbol("M_n", n_s, n_s) if M is None else M
    return w + alpha_s / n_s * Phi * M.T * td_errors_expr(w)


def _td_induction(claim: str, P, Q, update, sizes: dict, t0: float, mask=None) -> SymbolicProof:
    return _prove(claim, sizes, td_induction_obligations(P, Q, update, mask), t0)


def prove_td_all_sizes() -> SymbolicProof:
    """(W3) for every d, n, alpha and every L, by induction on L: L masked layers (W2) with (W3)
    give ``-Z_L[-1, -1] = q^T w_L``, ``w_L`` = L steps of batch TD(0) from ``w_0 = 0``.

    Invariant after l layers: ``Z_l = td_prompt_expr(w_l)``, i.e. the feature rows of every
    column are those of (W1), the last row of context column j is the TD error
    ``delta_j(w_l) = r_j + gamma w_l^T phi_j' - w_l^T phi_j`` and the query's last entry is
    ``-q^T w_l``. Base (checked): at ``w_0 = 0`` this is the (W1) prompt. Step (checked, whole
    output, for an arbitrary parameter symbol ``w``): the layer maps ``td_prompt_expr(w)`` to
    ``td_prompt_expr(w + (alpha/n) Phi delta(w))`` — every column's last row is updated (the
    context entries to the new TD errors, the query entry to minus the new value), nothing else.
    The invariant at l = L gives the claim. 12 blocks (6 base, 6 step)."""
    t0 = time.perf_counter()
    P, Q = td_blocks(alpha_s * Identity(d_s))
    return _td_induction("(W3)", P, Q, td_update_expr, dict(ALL_L), t0)


def prove_td_preconditioned_all_sizes() -> SymbolicProof:
    """(W4) for every d, n, L, proving THEORY's statement with our matrix form of the block:
    layers (W2) with ``P = e_D e_D^T`` and ``Q`` zero except ``Q[phi, phi] = -C_l^T``,
    ``Q[phi, phi'] = C_l^T`` (``C_l`` any d x d matrix symbol, its own per layer) give
    ``w_{l+1} = w_l + C_l u_l``, ``u_l = (1/n) Phi delta(w_l)``, in ``-Z_L[-1, -1] = q^T w_L``.
    Same induction as :func:`prove_td_all_sizes` (invariant ``td_prompt_expr(w_l)``), with the
    step checked for a generic ``C``; (W3) is ``C_l = alpha I``."""
    t0 = time.perf_counter()
    P, Q = td_blocks(MatrixSymbol("C", d_s, d_s))
    return _td_induction("(W4)", P, Q, td_precond_update_expr, dict(ALL_L), t0)


def prove_residual_gradient_all_sizes() -> SymbolicProof:
    """(W6) for every d, n, L, proving THEORY's statement with our matrix form
    :func:`residual_gradient_blocks`: one layer is ``w' = w + (alpha/n) (Phi - gamma Phi_next)
    delta(w)`` in the invariant of :func:`prove_td_all_sizes` (base and step checked), so L
    layers are L residual-gradient steps from 0 with ``-Z_L[-1, -1] = q^T w_L``."""
    t0 = time.perf_counter()
    P, Q = residual_gradient_blocks()
    return _td_induction("(W6)", P, Q, residual_gradient_update_expr, dict(ALL_L), t0)


def prove_td_lambda_all_sizes() -> SymbolicProof:
    """(W5) for every d, n, L, proving THEORY's statement: the (W3) block with the context part of
    the mask an **arbitrary** n x n matrix ``M_n`` (a matrix symbol; last row and column of the
    full mask zero) gives ``w' = w + (alpha/n) Phi M_n^T delta(w)`` in the (W3) invariant (base and
    step checked, whole output), so L layers are L such steps from 0. For the TD(lambda) mask
    ``M_n[j, i] = lam^(j - i)`` (i <= j, else 0), ``Phi M_n^T delta = sum_j delta_j e_j`` with the
    trace ``e_j = lam e_{j-1} + phi_j``: that is the matrix product written out (checked in float64
    by the tests, not here). ``M_n = I_n`` is (W3)."""
    t0 = time.perf_counter()
    P, Q = td_blocks(alpha_s * Identity(d_s))
    M_n = MatrixSymbol("M_n", n_s, n_s)
    return _td_induction("(W5)", P, Q, td_lambda_update_expr, dict(ALL_L), t0, mask=M_n)

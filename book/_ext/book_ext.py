"""The book build's Sphinx extension, ``book_ext`` (``_config.yml``: ``sphinx.local_extensions``).

Build machinery, kept out of the teaching package ``transformer_tutorial``: readers install
and read the package, the book's build imports this module from ``book/_ext/``.

* Every explorer renders as its static HTML viewer: notebooks executed during the book build
  run in kernels started by this process, and they inherit its environment
  (:data:`~transformer_tutorial.widgets.STATIC_ENV_VAR`).
* Every browser asset is served from the site itself: the pinned npm packages
  (``package.json``/``package-lock.json``, installed by ``make book``) are copied into
  ``_vendor/`` of the built site, and KaTeX's CSS and the widget manager point there. The
  folder is deliberately not called ``_static``: Jupyter Book injects every ``.js``/``.css``
  of a ``_static`` folder into every page.
* bertviz views built in the book (:mod:`transformer_tutorial.bertviz_views`) hold
  :data:`VENDOR_URL_MARKER` where the site's ``_vendor/`` URL goes; each page's marker is
  replaced with that page's relative path to ``_vendor/``.
* MiniLM for the reader's browser (:mod:`transformer_tutorial.browser_model`): when an html
  build finishes, the exported model, its scripts, a demo page and onnxruntime-web's files
  are written into ``_models/minilm/`` and ``_vendor/onnxruntime-web/`` of the site, from a
  cache in ``_build/.model_cache/`` (never committed) that an unchanged rebuild reuses.
* Every notebook page says how to run it live: a line under its title links its ``.ipynb``
  and names ``make lab``.
* ``.. api-modules::`` (in ``book/api.md``) documents every public module of the package,
  subpackages included (``transformer_tutorial.chapters``), with autodoc + viewcode, so a
  module added later appears without editing the page.
* sphinx-codeautolink links the code of every page written, incremental builds included.
* Output images without alt text (myst-nb gives none unless the output's metadata has one)
  get the code line that drew them.
"""

from __future__ import annotations

import atexit
import os
import pkgutil
import posixpath
import shutil
import socket
import tempfile
import time
from pathlib import Path
from subprocess import PIPE, Popen

from docutils import nodes
from docutils.statemachine import StringList
from sphinx.util.docutils import SphinxDirective
from sphinx.util.osutil import relative_uri

import transformer_tutorial
from transformer_tutorial import __version__
from transformer_tutorial.bertviz_views import VENDOR_URL_MARKER
from transformer_tutorial.widgets import STATIC_ENV_VAR

VENDOR_DIR = "_vendor"
# What the built site serves: destination under ``_vendor/`` -> source under ``node_modules/``.
# A directory is copied whole (skipping source maps).
VENDOR_FILES = {
    "katex/katex.min.css": "katex/dist/katex.min.css",
    "katex/fonts": "katex/dist/fonts",  # katex.min.css loads url(fonts/KaTeX_*.woff2)
    "requirejs/require.js": "requirejs/require.js",
    "d3/d3.min.js": "d3/dist/d3.min.js",
    "jquery/jquery.min.js": "jquery/dist/jquery.min.js",
    # The widget manager loads its icon fonts relative to its own URL: keep them beside it.
    "html-manager": "@jupyter-widgets/html-manager/dist",
}
_HTML_MANAGER_SKIP = ("*.map", "embed.js*", "libembed-amd.js", "[0-9]*.embed.js")
# Sphinx prefixes local asset paths with ``_static/``; ``../`` climbs back to the site root.
_FROM_STATIC = posixpath.join("..", VENDOR_DIR)


def vendor_source_dir(srcdir: str | os.PathLike[str]) -> Path:
    """``node_modules`` of the book: where ``npm ci`` put the pinned assets."""
    return Path(srcdir) / "node_modules"


def _set_asset_config(app, config) -> None:
    config.katex_css_path = posixpath.join(_FROM_STATIC, "katex/katex.min.css")
    # myst-nb adds these to pages that hold widget state (its default is two CDN URLs).
    config.nb_ipywidgets_js = {
        posixpath.join(_FROM_STATIC, "requirejs/require.js"): {},
        posixpath.join(_FROM_STATIC, "html-manager/embed-amd.js"): {},
    }


def _copy_vendor(app) -> None:
    if app.builder.format != "html":
        return
    source = vendor_source_dir(app.srcdir)
    missing = [src for src in VENDOR_FILES.values() if not (source / src).exists()]
    if missing:
        raise RuntimeError(
            f"the pinned browser assets are missing from {source} ({', '.join(missing)}): "
            "run `npm ci` at the repository root (`make book` does)"
        )
    target = Path(app.outdir) / VENDOR_DIR
    for dest, src in VENDOR_FILES.items():
        src_path, dest_path = source / src, target / dest
        if src_path.is_dir():
            ignore = shutil.ignore_patterns(*_HTML_MANAGER_SKIP, "*.map")
            shutil.copytree(src_path, dest_path, ignore=ignore, dirs_exist_ok=True)
        else:
            dest_path.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src_path, dest_path)


def model_cache_dir(outdir: str | os.PathLike[str]) -> Path:
    """Where the exported browser model is cached: ``.model_cache`` beside the html output
    (``_build/.model_cache`` for ``_build/html``)."""
    return Path(outdir).parent / ".model_cache"


def _write_browser_model(app, exception: Exception | None) -> None:
    """Write MiniLM for the browser into the built site (see
    :mod:`transformer_tutorial.browser_model`)."""
    if exception is not None or app.builder.format != "html":
        return
    from transformer_tutorial.browser_model import write_site_files

    write_site_files(app.outdir, vendor_source_dir(app.srcdir), model_cache_dir(app.outdir))


def _start_katex_server(app) -> None:
    """Start sphinxcontrib-katex's prerendering server, retrying a refused connection.

    Its own start-up connects as soon as the Unix socket file exists, which can be before
    node listens on it: a ConnectionRefusedError that failed about one build in five here.
    """
    if not app.config.katex_prerender or app.builder.format != "html":
        return
    from sphinxcontrib.katex import STARTUP_TIMEOUT, KaTeXServer

    if KaTeXServer.katex_server is not None:
        return
    rundir = Path(tempfile.mkdtemp(prefix="sphinxcontrib_katex"))
    socket_path = rundir / "katex.sock"
    process = Popen(
        KaTeXServer.build_command(socket=socket_path), stdin=PIPE, stdout=PIPE, cwd=rundir
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT
    while True:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(socket_path))
            break
        except (FileNotFoundError, ConnectionRefusedError):
            sock.close()
            if time.monotonic() > deadline or process.poll() is not None:
                process.kill()
                raise KaTeXServer.timeout_error(STARTUP_TIMEOUT) from None
            time.sleep(0.01)
    server = KaTeXServer(rundir, process, sock)
    atexit.register(KaTeXServer.terminate, server)
    KaTeXServer.katex_server = server


def _codeautolink_every_written_page(app, doctree: nodes.document, docname: str) -> None:
    """Let sphinx-codeautolink link every page written, not only the outdated ones.

    It rewrites only the pages outdated when the build started, yet Sphinx also rewrites
    pages whose dependencies changed, which then lose their links in incremental builds
    (sphinx-codeautolink issue #181, open for 0.19.0).
    """
    for listener in app.events.listeners.get("build-finished", []):
        state = getattr(listener.handler, "__self__", None)
        if type(state).__name__ == "SphinxCodeAutoLink" and hasattr(state, "outdated_docs"):
            state.outdated_docs.add(str(Path(docname)))


def _is_notebook(app, docname: str) -> bool:
    return Path(app.env.doc2path(docname)).suffix == ".ipynb"


# How a chapter's first cell starts its paragraph on running the notebook.
_RUN_IT_YOURSELF = "Run it yourself:"


def _run_live_note(app, doctree: nodes.document, docname: str) -> None:
    """A chapter's "Run it yourself" paragraph (its first cell: the install line, ``make
    lab``) gets the link to download the ``.ipynb``; a notebook page without one gets a line
    under its title. One note per page, marked ``tt-run-live``."""
    if not _is_notebook(app, docname) or app.builder.format != "html":
        return
    section = next(iter(doctree.findall(nodes.section)), None)
    if section is None or not isinstance(section[0], nodes.title):
        return
    filename = Path(app.env.doc2path(docname)).name
    href = relative_uri(
        app.builder.get_target_uri(docname), posixpath.join("_sources", docname + ".ipynb")
    )
    link = nodes.reference("", "", nodes.literal(text=filename), refuri=href)
    para = next(
        (p for p in section.findall(nodes.paragraph)
         if p.astext().lstrip().startswith(_RUN_IT_YOURSELF)),
        None,
    )  # fmt: skip
    if para is not None:
        para += nodes.Text(" The notebook of this page: ")
        para += link
        para += nodes.Text(".")
        para.replace_self(nodes.container("", para.deepcopy(), classes=["tt-run-live"]))
        return
    para = nodes.paragraph()
    para += nodes.strong(text=_RUN_IT_YOURSELF + " ")
    para += nodes.Text("download the notebook ")
    para += link
    para += nodes.Text(" or, in a clone of the repository, run ")
    para += nodes.literal(text="make lab")
    para += nodes.Text(" to open every chapter in JupyterLab with live sliders.")
    section.insert(1, nodes.container("", para, classes=["tt-run-live"]))


def _image_alt_text(app, doctree: nodes.document, docname: str) -> None:
    """Alt text for notebook output images that have none (myst-nb sets it only from cell or
    output metadata): the code line that produced the figure."""
    for image in doctree.findall(nodes.image):
        if not image.get("alt"):
            image["alt"] = _alt_from_cell(image)


def _classes(node: nodes.Node) -> list[str]:
    return node.get("classes", []) if isinstance(node, nodes.Element) else []


def _alt_from_cell(image: nodes.image) -> str:
    """``Figure: <last line of the cell's code>``, the call that drew it."""
    cell = image.parent
    while cell is not None and "cell" not in _classes(cell):
        cell = cell.parent
    lines: list[str] = []
    if cell is not None:
        for block in cell.findall(nodes.literal_block):
            if any("cell_input" in _classes(a) for a in _ancestors(block)):
                lines += [line.strip() for line in block.astext().splitlines() if line.strip()]
    code = next((line for line in reversed(lines) if not line.startswith("#")), "")
    return f"Figure: {code}" if code else "Figure produced by the code cell above"


def _ancestors(node: nodes.Node):
    while node.parent is not None:
        node = node.parent
        yield node


def _resolve_vendor_marker(app, pagename, templatename, context, doctree) -> None:
    body = context.get("body")
    if body and VENDOR_URL_MARKER in body:
        url = context["pathto"](VENDOR_DIR, 1) + "/"
        context["body"] = body.replace(VENDOR_URL_MARKER, url)


def public_modules() -> list[str]:
    """Every module and subpackage of :mod:`transformer_tutorial`, at any depth, no part of
    whose name starts with ``_``."""
    prefix = transformer_tutorial.__name__ + "."
    return sorted(
        info.name
        for info in pkgutil.walk_packages(transformer_tutorial.__path__, prefix)
        if not any(part.startswith("_") for part in info.name.split("."))
    )


class ApiModules(SphinxDirective):
    """One section per public module: its docstring and documented members.

    Use it inside ``{eval-rst}``: autodoc's output is reStructuredText.
    """

    def run(self) -> list[nodes.Node]:
        sections = []
        for module in public_modules():
            section = nodes.section(ids=[nodes.make_id(f"api-{module}")])
            section += nodes.title(text=module)
            directive = [f".. automodule:: {module}", "   :members:"]
            self.state.nested_parse(StringList(directive, self.get_source_info()[0]), 0, section)
            sections.append(section)
        return sections


def setup(app) -> dict:
    os.environ[STATIC_ENV_VAR] = "1"
    app.connect("config-inited", _set_asset_config)
    app.connect("builder-inited", _copy_vendor)
    app.connect("builder-inited", _start_katex_server)
    app.connect("build-finished", _write_browser_model)
    app.connect("doctree-resolved", _run_live_note)
    app.connect("doctree-resolved", _image_alt_text)
    app.connect("doctree-resolved", _codeautolink_every_written_page)
    app.connect("html-page-context", _resolve_vendor_marker)
    app.add_directive("api-modules", ApiModules)
    return {"version": __version__, "parallel_read_safe": True, "parallel_write_safe": True}

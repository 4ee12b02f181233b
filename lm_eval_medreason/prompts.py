"""Jinja rendering of the templates in prompts/ (one environment, strict variables)."""

from functools import lru_cache


@lru_cache(maxsize=1)
def environment():
    """The Jinja environment over the shipped prompts/ folder; undefined variables are errors."""
    import jinja2

    from lm_eval_medreason.resources import prompts_dir

    return jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(prompts_dir())),
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=False,
        autoescape=False,
    )


def render(template: str, **variables) -> str:
    """Render ``template`` (a file name in prompts/) with ``variables``."""
    return environment().get_template(template).render(**variables)


def render_case(template: str, case: dict) -> str:
    """Render a template whose variables are the fields of a benchmark case."""
    return render(template, question=case["question"], options=case["options"])

"""Everything around the request: greetings, backstory, urgency, sign-offs, per channel.

These parts carry no intent, which is the point: they give messages realistic length
and noise that a classifier has to look past. How much of each a channel gets lives
in `ChannelStyle` tables, so "long messages" is a different table, not different code.
"""

from __future__ import annotations

from dataclasses import dataclass

CHANNELS: tuple[str, ...] = ("chat", "email", "web_form")


@dataclass(frozen=True)
class ChannelStyle:
    """How one channel dresses a request. Count fields are weights for 0, 1, 2, ..."""

    greeting: float
    fragment: float  # share of chat turns that are a terse fragment, not a sentence
    context: tuple[float, ...]  # intent-specific backstory sentences
    backstory: tuple[float, ...]  # intent-free backstory sentences
    details: tuple[float, ...]
    lead_in: float
    request_first: float  # request before the backstory rather than after
    urgency: float
    sign_off: float
    paragraphs: bool  # blank lines between greeting, story, request and sign-off
    lowercase: float
    slang: float
    typo: float  # share of messages with at least one typo


# Base lengths: chat mostly a few words, web forms a few sentences, emails a paragraph
# or more. Together they give the long tail the serving benchmarks need.
BASE_STYLES: dict[str, ChannelStyle] = {
    "chat": ChannelStyle(
        greeting=0.3, fragment=0.6, context=(0.85, 0.15), backstory=(1.0,), details=(0.9, 0.1),
        lead_in=0.0, request_first=0.5, urgency=0.15, sign_off=0.08, paragraphs=False,
        lowercase=0.7, slang=0.5, typo=0.4,
    ),
    "web_form": ChannelStyle(
        greeting=0.2, fragment=0.0, context=(0.45, 0.45, 0.1), backstory=(0.8, 0.2),
        details=(0.55, 0.35, 0.1), lead_in=0.15, request_first=0.35, urgency=0.15,
        sign_off=0.3, paragraphs=False, lowercase=0.05, slang=0.05, typo=0.15,
    ),
    "email": ChannelStyle(
        greeting=0.92, fragment=0.0, context=(0.1, 0.45, 0.35, 0.1),
        backstory=(0.35, 0.4, 0.15, 0.1), details=(0.2, 0.45, 0.25, 0.1), lead_in=0.25,
        request_first=0.2, urgency=0.35, sign_off=0.9, paragraphs=True, lowercase=0.0,
        slang=0.0, typo=0.08,
    ),
}  # fmt: skip

# Several times the base length in every channel: customers who explain everything.
LONG_STYLES: dict[str, ChannelStyle] = {
    "chat": ChannelStyle(
        greeting=0.5, fragment=0.0, context=(0.0, 0.5, 0.5), backstory=(0.2, 0.5, 0.3),
        details=(0.3, 0.5, 0.2), lead_in=0.2, request_first=0.3, urgency=0.3, sign_off=0.2,
        paragraphs=False, lowercase=0.6, slang=0.4, typo=0.3,
    ),
    "web_form": ChannelStyle(
        greeting=0.4, fragment=0.0, context=(0.0, 0.3, 0.5, 0.2), backstory=(0.0, 0.4, 0.4, 0.2),
        details=(0.0, 0.4, 0.4, 0.2), lead_in=0.3, request_first=0.2, urgency=0.4,
        sign_off=0.6, paragraphs=False, lowercase=0.05, slang=0.05, typo=0.15,
    ),
    "email": ChannelStyle(
        greeting=1.0, fragment=0.0, context=(0.0, 0.0, 0.3, 0.4, 0.3),
        backstory=(0.0, 0.0, 0.3, 0.4, 0.3), details=(0.0, 0.2, 0.4, 0.4), lead_in=0.4,
        request_first=0.1, urgency=0.6, sign_off=1.0, paragraphs=True, lowercase=0.0,
        slang=0.0, typo=0.08,
    ),
}  # fmt: skip

GREETINGS: dict[str, tuple[str, ...]] = {
    "chat": ("hi", "hey", "hello", "hi there", "hey quick q", "hello?", "good morning"),
    "web_form": ("Hi,", "Hello,", "Hi team,", "Hello support,"),
    "email": (
        "Hi,",
        "Hello,",
        "Hi there,",
        "Hello support team,",
        "Dear Customer Service,",
        "Good morning,",
        "Hey team,",
        "To whom it may concern,",
        "Dear Sir or Madam,",
        "Hi {agent},",
    ),
}

SIGN_OFFS: dict[str, tuple[str, ...]] = {
    "chat": ("thx", "ty", "thanks!", "thanks"),
    "web_form": ("Thanks.", "Thank you!", "Thanks in advance.", "Cheers, {name}"),
    "email": (
        "Thanks,\n{name}",
        "Kind regards,\n{name} {surname}",
        "Best,\n{name}",
        "Thank you in advance,\n{name}",
        "Cheers,\n{name}",
        "Regards,\n{name} {surname}",
        "Looking forward to hearing from you.\n\n{name} {surname}",
        "Many thanks for your help,\n{name}\n\nSent from my phone",
    ),
}

URGENCY: dict[str, tuple[str, ...]] = {
    "chat": ("asap", "please hurry", "urgent!!", "???", "hello??", "need this today"),
    "web_form": (
        "This is urgent.",
        "Please reply as soon as possible.",
        "I need this sorted today.",
        "I've been waiting for days now.",
    ),
    "email": (
        "This is quite urgent, so I'd appreciate a quick reply.",
        "Please treat this as a priority.",
        "I've been waiting for days now and this is getting really frustrating.",
        "I need this resolved before the weekend.",
        "If I don't hear back soon I'll have to take this further.",
    ),
}

LEAD_INS: tuple[str, ...] = (
    "Hoping you can help.",
    "I have a question.",
    "Here's my problem.",
    "Quick one for you.",
    "I'll keep this short.",
    "Sorry to bother you.",
)

# Intent-free backstory, shared by every intent so that it cannot identify one.
BACKSTORY: tuple[str, ...] = (
    "I've been a customer for {months} months.",
    "This is my third time reaching out about this.",
    "I spoke to someone on the phone yesterday but nothing happened.",
    "Your chatbot couldn't answer this.",
    "My earlier ticket was {ticket}.",
    "I bought a {product} from you on {when}.",
    "Sorry if this is the wrong place to ask.",
    "Some background: I work from home and rely on my {product} every day.",
    "Before contacting you I searched the help centre and the forum for a good hour.",
    "I'll give you as much detail as I can so we don't have to go back and forth.",
    "I first noticed something was off on {when}, but I was travelling until now.",
    "My partner set most of this up, so bear with me if I get some terms wrong.",
    "To be fair, everything has been great until now.",
    "I recommended you to a few friends, which makes this a bit awkward.",
    "I called your hotline on {when} and waited on hold for {days} minutes.",
    "I tried to sort this out myself with the steps in your FAQ, without luck.",
    "I'm writing from my work email because I can't reach my usual one.",
    "My elderly father uses the {product}, so I'm handling this for him.",
)

# Joins two requests in one message; chat joins them the way people type.
CONNECTORS: dict[str, tuple[str, ...]] = {
    "chat": (" also ", " and ", ". also ", " + ", ", and "),
    "web_form": ("Also,", "Separately,", "And another thing:", "On top of that,"),
    "email": ("Also,", "Separately,", "While I have you,", "On a different note,"),
}

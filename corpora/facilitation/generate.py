#!/usr/bin/env python3
"""Generate qualcode's fictional, coded focus-group corpus about continuous improvement.

Every district, school and person is invented, and every sentence is composed here from fragments
we wrote. The corpus exists to exercise coding that depends on conversation: whether a turn
summarises, builds on, agrees with or asks about something depends on the turn before it and on
who speaks, so a model that reads one turn's words alone cannot get every code right.

Each turn is generated as a *move* (a probe, a summary, an uncoded answer...) and its code follows
from the move, so the labels are consistent; then a few labels are flipped at random to mimic coder
disagreement. Standard library only, one fixed seed: two runs write identical files.

    python corpora/facilitation/generate.py            # writes next to this file
    python corpora/facilitation/generate.py --out DIR  # writes into DIR

It writes focus-groups.csv (all groups, first coder), second-coder.csv (the same rows for a third of
the groups, second coder) and second-coder-batch.csv (the second coder's codings as decisions for
`qualcode code --batch`).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import random
import re
import sys
from collections import Counter
from pathlib import Path

SEED = 2026
GROUPS = 60
SECOND_CODER_GROUPS = 20
FIRST_CODER = "Rosa Delgado"
SECOND_CODER = "Sam Okonjo"
FIRST_FLIP = 0.05   # share of rows whose label the first coder gets "wrong"
SECOND_FLIP = 0.05  # the second coder errs independently, so the two disagree on ~10% of rows
TEST_SHARE = 0.2
COLUMNS = ["document", "title", "kind", "site", "district", "date", "seq", "speaker", "speaker_role",
           "text", "codes", "coder", "split"]

FACILITATION = ["facilitation.probe", "facilitation.summarise", "facilitation.invite"]
DISCUSSION = ["discussion.agree", "discussion.build", "discussion.clarify"]
ROLE_CODES = {"facilitator": FACILITATION, "participant": DISCUSSION}

# --- the fictional world ---------------------------------------------------------------------

DISTRICTS = {
    "Pinecrest Unified": ["Alder Creek Middle", "Pinecrest High", "Juniper Elementary", "Sorrel Park Elementary"],
    "Marrow Bay Schools": ["Marrow Bay Middle", "Gull Point Elementary", "Tidewater High", "Kelp Street Elementary"],
    "Fennimore County Schools": ["Fennimore Junior High", "Hollis Ridge Elementary", "Bramble Elementary", "Fennimore Central High"],
    "Ostrander Valley USD": ["Ostrander Middle", "Larkspur Elementary", "Quarry Hill Elementary", "Valley Vista High"],
    "Redwing Lake District": ["Redwing Lake Middle", "Cattail Elementary", "Heron Cove Elementary", "Redwing Lake High"],
    "Saltgrass Public Schools": ["Saltgrass Elementary", "Dune Road Middle", "Mesquite Flats Elementary", "Saltgrass High"],
}
NAMES = ["Dana", "Luis", "Priya", "Marcus", "Hana", "Omar", "Teresa", "Jonah", "Marisol", "Kwame", "Ingrid",
         "Devon", "Fatima", "Reuben", "Lucia", "Tobias", "Aiyana", "Grant", "Noor", "Esteban", "Willa", "Ravi",
         "Colette", "Desmond", "Yuki", "Bettina", "Arturo", "Shauna", "Felix", "Imani", "Parker", "Rosalind",
         "Tariq", "Greta", "Mateo", "Linnea", "Curtis", "Ada", "Soren", "Keisha"]
GROUP_KINDS = [
    # (who, site suffix or None for cross-school, what "your X" means)
    ("teachers", "school", "grade level"),
    ("instructional coaches", None, "school"),
    ("principals", None, "school"),
    ("teacher leaders", "school", "team"),
    ("improvement team members", None, "school"),
]

# --- fragments, by topic -----------------------------------------------------------------------
# Subjects are singular noun phrases in a speaker's own voice ("our ..."); predicates fit any of
# them. A statement is opener + subject + predicate + tail, or opener + "we" + action + tail.

TOPICS = {
    "plc": {
        "label": "PLC meetings",
        "subjects": ["our PLC time", "the Tuesday PLC", "the grade-level PLC", "the PLC agenda", "our collaboration block",
                     "the common planning period", "the PLC protocol", "the weekly team meeting", "our PLC charter",
                     "the early-release PLC", "the PLC facilitator role", "the shared planning doc", "our content team meeting",
                     "the student-work protocol"],
        "actions": ["spend most of PLC time on logistics", "bring student work to every other meeting", "rotate who facilitates",
                    "use a timer so we actually get to the work", "start with one student and work outward",
                    "end every meeting with a next step for Monday", "plan the common assessment together",
                    "sort exit tickets into three piles", "skip the protocol when we are behind", "keep notes in one shared folder",
                    "look at the same task across all classrooms", "argue about pacing more than about kids"],
    },
    "data": {
        "label": "data cycles",
        "subjects": ["the data cycle", "the six-week cycle", "our data meeting", "the benchmark window", "the data wall",
                     "the exit-ticket data", "the improvement dashboard", "the data protocol", "our running record data",
                     "the quarterly data review", "the spreadsheet the district sends", "the attendance data",
                     "the student survey", "the common formative assessment"],
        "actions": ["look at results within a week of the test", "pick one measure and stick to it for the cycle",
                    "color-code every student by band", "track a handful of focal students", "print the data before the meeting",
                    "compare classrooms without names on them", "write a prediction before we see the numbers",
                    "chart the same three measures each cycle", "wait for the district report before acting",
                    "pull our own numbers from the gradebook", "re-test the small group after two weeks",
                    "talk about the data but never change the plan"],
    },
    "coaching": {
        "label": "coaching",
        "subjects": ["the coaching cycle", "our instructional coach", "the coaching model", "the co-teaching piece",
                     "the pre-conference", "the debrief after a lesson", "the coaching log", "the modeling lesson",
                     "the walkthrough feedback", "the coach's schedule", "peer coaching", "the video reflection",
                     "the new-teacher coaching", "the coaching menu"],
        "actions": ["set one goal with the coach per cycle", "watch the coach model before trying it",
                    "record a lesson and watch it together", "meet with the coach during lunch",
                    "ask for coaching only when something goes wrong", "co-plan the lesson and then co-teach it",
                    "visit each other's rooms for ten minutes", "keep a log of what we tried",
                    "share the coach across two schools", "pick the focus ourselves instead of being assigned",
                    "debrief the same day while it is fresh", "use the coach mainly for testing prep"],
    },
    "aims": {
        "label": "improvement aims",
        "subjects": ["our improvement aim", "the aim statement", "the school goal", "the district priority",
                     "the theory of action", "the driver diagram", "our focus on student discourse",
                     "the literacy goal", "the math goal", "the equity goal", "the one-page plan",
                     "the school improvement plan", "the aim for ninth-grade on-track", "our problem of practice"],
        "actions": ["revisit the aim at every staff meeting", "write the aim in student-friendly language",
                    "narrow the goal to one grade band", "set the aim as a team in August",
                    "post the aim in every classroom", "tie each PD day back to the goal",
                    "measure the aim with our own common task", "change the goal every year",
                    "ask students what the goal means to them", "keep two goals and let teams choose",
                    "check the aim against the driver diagram each term", "leave the aim to the leadership team"],
    },
    "scaling": {
        "label": "scaling a practice",
        "subjects": ["the number talks routine", "the reading conference practice", "the new discussion routine",
                     "the pilot in fourth grade", "the advisory lesson", "the feedback routine", "the phonics block",
                     "the warm call routine", "the pilot classroom", "the writing workshop model", "the talk-moves poster",
                     "the spread to other schools", "the student-led conference", "the morning meeting routine"],
        "actions": ["start with two volunteer classrooms", "let each team adapt the routine", "film the pilot teachers",
                    "write a one-page guide before spreading it", "invite other schools to watch it live",
                    "add one grade level each semester", "keep a non-negotiable core and flex the rest",
                    "drop the practice when the champion left", "train everyone at once in August",
                    "test it in a small group before the whole class", "share the materials in one folder",
                    "pair a pilot teacher with a new teacher"],
    },
    "district": {
        "label": "district support",
        "subjects": ["the district office", "the central office support", "the district coach", "the district PD calendar",
                     "the network meeting", "the principal supervisor", "the district data team", "the release-time budget",
                     "the district curriculum team", "the new district framework", "the district walkthrough",
                     "the superintendent's message", "the district improvement team", "the substitute pool"],
        "actions": ["hear about new priorities from the newsletter", "get release time twice a year",
                    "send a team to the network meeting", "ask the district for data help",
                    "wait for the framework before planning", "meet with the principal supervisor monthly",
                    "fill out the same template for three offices", "borrow a district coach for a cycle",
                    "push back on the testing calendar", "get materials late every fall",
                    "share our plan with the district team", "lose our subs to other schools"],
    },
}
PREDICATES = [
    "finally has a clear purpose", "turned into a place to vent", "works when someone protects the time",
    "gets squeezed out by everything else", "depends on who is running it", "changed a lot this year",
    "looks good on paper but not in practice", "is the part people actually value", "keeps getting rescheduled",
    "started to feel like ours", "feels like a compliance exercise", "is where the real conversation happens",
    "only works with a strong facilitator", "has gotten better since the spring", "is different at every school",
    "takes more time than anyone planned", "gives new teachers somewhere to start", "runs on a lot of goodwill",
    "never quite connects to the classroom", "made us look at our own teaching", "is mostly about compliance now",
    "helped the quieter teachers speak up", "is the first thing cut when there is a sub shortage",
    "is more useful in the fall than the spring",
]
OPENERS = ["", "", "", "Honestly, ", "I think ", "For us, ", "At our school, ", "This year ", "I'd say ", "Right now ",
           "In my experience ", "The way I see it, ", "To be fair, ", "Mostly ", "Well, ", "So ", "I mean, ",
           "From where I sit, ", "Last year ", "Since the fall, "]
WE_OPENERS = ["", "", "Honestly, ", "At our school ", "On our team ", "Lately ", "Most weeks ", "This year ",
              "In my building ", "Usually ", "Since January ", "For the most part "]
TAILS = ["", "", "", "", " and that has made a difference", ", which surprised me", ", at least in my building",
         ", though not every team does", " when we have the time", ", and the kids notice", ", mostly in the fall",
         " because the principal backs it", ", but it took a year to get there", " even when the schedule is tight",
         ", and people mostly buy in", ", which is hard with new staff", " now that we have the coach",
         " since the new schedule started", ", but only in some grades", ", and I did not expect that"]
DETAILS = ["Last month we tried it with the seventh-grade team.", "It took a couple of rounds before it stuck.",
           "The new teachers picked it up fastest.", "We keep a sticky-note chart by the door.",
           "Our principal sat in on the first few.", "It fell apart during testing season.",
           "We had to cut it to twenty minutes.", "Half the team was skeptical at first.",
           "The kids started asking about it themselves.", "We wrote it up on one page for the others.",
           "We only managed it twice before winter break.", "The coach brought the first set of materials.",
           "We did it again in March with better results.", "Nobody outside the team has seen it yet.",
           "We borrowed the idea from Gull Point, actually.", "It still depends on who shows up that day."]
RHETORICAL = [" And who has time for that?", " I mean, what else would we do?", " Does anyone really read those?",
              " Why would we stop now?", " Who decided that?"]
EXAMPLE_LEADS = ["For example, ", "Like last week, ", "One time in October ", "A good example: ", "So, concretely, ",
                 "Take the fall cycle. ", "The clearest case was in February, when ", "Well, for instance, "]
EXAMPLE_BODIES = [
    "we brought three samples of student writing and spent the whole hour on one of them",
    "the coach came in for two lessons and we planned the third one together",
    "we noticed the same misconception in every room and re-taught it the next day",
    "the district changed the calendar and we lost two of our meetings",
    "a new teacher ran the protocol and it was the best meeting we had all year",
    "we sorted the exit tickets and regrouped kids for the Friday lesson",
    "the principal joined and everyone got quiet, so we changed how we start",
    "we compared two classrooms and the difference was the questions the teacher asked",
    "we gave the survey to students and their answers changed our plan",
    "we tried it with one class first and then the whole grade picked it up",
    "we met with the district team and left with a different template to fill out",
    "we looked at attendance alongside the reading data for the first time",
]

# --- facilitator lines ---------------------------------------------------------------------------

TOPIC_QUESTIONS = {
    "plc": ["How does your team use its PLC time?", "What happens in a typical PLC meeting?",
            "Who decides what the PLC works on?", "What makes a PLC meeting worth the time?"],
    "data": ["How do you use data in your improvement work?", "Walk us through a data cycle at your school.",
             "What data do you actually look at together?", "How does the data cycle fit into your week?"],
    "coaching": ["How does coaching work at your school?", "What does a coaching cycle look like for you?",
                 "Who gets coached, and how is that decided?", "What has coaching changed in your classroom?"],
    "aims": ["What is your school's improvement aim this year?", "How was your improvement aim set?",
             "How do people on staff talk about the goal?", "Does the aim show up in your day-to-day work?"],
    "scaling": ["Tell us about a practice that has spread beyond where it started.",
                "How do good ideas move from one classroom to others?", "What happened when you tried to scale the pilot?",
                "What helps a practice last once the first group moves on?"],
    "district": ["What kind of support do you get from the district?", "How does the district office show up in your work?",
                 "What would you want the district to do differently?", "How do district priorities reach your school?"],
}
TOPIC_LEADS = ["Let's turn to {label}. ", "Next I'd like to ask about {label}. ", "Let's move on to {label}. ",
               "Switching gears to {label}. ", "I want to spend a few minutes on {label}. ", "Okay, {label}. ", ""]
OPENING = ["Thanks for coming, everyone. This conversation is part of the evaluation; nothing you say will be tied to your name.",
           "Welcome, and thank you for making the time. We'll go for about an hour, and there are no wrong answers.",
           "Thanks for being here. I'll ask a few questions and mostly stay out of the way; please talk to each other too.",
           "Let's get started. Everything stays anonymous in what we write up, and you can pass on any question."]
INTRO_Q = ["Could we go around and say your name and your role?", "Let's start with quick introductions, your name and what you do.",
           "Maybe start by telling us how long you've been in the district?"]
INTRO_A = ["I'm {name}, I teach {grade} here.", "{name}, I'm one of the coaches.", "{name}, {grade}, going on my {nth} year.",
           "Hi, I'm {name}, I'm on the leadership team.", "I'm {name}; I started in the fall.", "{name}, {grade}, {nth} year in the district."]
GRADES = ["third grade", "fifth grade", "seventh-grade math", "ninth-grade English", "special education", "kindergarten",
          "science", "sixth-grade ELA", "high school history", "second grade"]
NTH = ["second", "third", "fifth", "eighth", "tenth", "twelfth"]
CLOSING = ["That's our time. Thank you all, this was really helpful.", "Thank you, everyone. We'll share a summary with the team in the spring.",
           "Let's stop there. I really appreciate how candid you've been.", "Thanks so much. If anything else comes to mind, email me."]
HOUSEKEEPING = ["We have about fifteen minutes left.", "Just a reminder that the recorder is on.", "Let's take a two-minute break.",
                "I'll keep us moving so we get to everything.", "Is everyone okay to keep going for another ten minutes?",
                "Can everyone see the handout from earlier?", "Help yourselves to coffee, by the way.",
                "We're about halfway through.", "Does anyone need to leave early?"]
NAMED_HOUSEKEEPING = ["{name}, could you speak up a little for the recorder?", "{name}, could you pass the sign-in sheet around?",
                      "{name}, do you need to leave at four?", "Thanks, {name}, you can put that on the table."]
ACKS = ["Thank you.", "That's helpful, thanks.", "Okay.", "Great, thank you.", "Mm-hm.", "Thanks for that.", "Got it.",
        "I appreciate that.", "Okay, good.", "Thanks, that's really useful."]
POLLS = {
    "plc": ["Quick show of hands: who has a PLC that meets every week?", "Does everyone here have common planning time?"],
    "data": ["Does everyone here use the district dashboard?", "Has everyone been through at least one data cycle?"],
    "coaching": ["Show of hands, who has worked with a coach this year?", "Does every school here have a full-time coach?"],
    "aims": ["Does everyone know their school's aim this year?", "Is the aim written down somewhere at your school?"],
    "scaling": ["Has everyone here been part of a pilot?", "Did the routine reach every grade at your school?"],
    "district": ["Does everyone get release time from the district?", "Has everyone met the principal supervisor this year?"],
}
POLL_ANSWERS = ["Yes.", "Yes, we do.", "Mostly, yes.", "We do, yes.", "Not really.", "No, not this year.",
                "Sort of.", "Yes, every week.", "Technically, yes.", "We used to."]
PROBES = [
    "Can you say more about that?", "Can you give me an example?", "Tell me more about that.",
    "Tell me more about {ref}.", "What does {ref} look like on a typical week?", "Say more about {ref}",
    "What did that look like in practice?", "Walk me through the last time that happened.",
    "How did that start?", "What makes {ref} work, when it works?", "{name}, say more about that.",
    "I'm curious what that looked like", "Can you unpack that a little?", "Give us a concrete example",
    "How did people react to {ref}?", "What happened next?", "{name}, can you give an example of that?",
    "When you say {ref}, what does that mean in your building?", "Why do you think that is?",
    "Tell me what that was like for you", "What changed?", "Help me picture {ref}. Who is in the room?",
]
NAMED_PROBES = ["{name}, say more about that.", "{name}, can you give an example of that?",
                "Back to you, {name}: what did that look like?", "{name}, what made {ref} work for you?",
                "{name}, you said {ref}. Can you say more", "Going back to {name}, how did that start?",
                "{name}, walk us through one time that happened."]
SUMMARY_LEADS = ["So what you're saying is {clause}.", "If I'm hearing you right, {clause}.", "So, in other words, {clause}.",
                 "It sounds like {clause}.", "Let me make sure I have this: {clause}.", "What I'm hearing is that {clause}.",
                 "So {clause}. Is that fair?", "{Clause}. Have I got that right?", "So for you, {clause}.",
                 "{Clause}, if I understand you.", "Okay, so {clause}.", "So the point is {clause}.",
                 "Let me check: {clause}?", "{Clause}. Is that right?"]
INVITES = ["{name}, what about your {unit}?", "{name}, is it the same for your {unit}?", "{name}, you've been quiet. What's your take?",
           "{name}, you're nodding", "Does anyone else see that? {name}?", "I'd like to hear from {name} on this.",
           "{name}, how does that compare with your {unit}?", "Let's hear from {name}", "{name}, what's it like at your end?",
           "Someone who hasn't spoken yet? {name}, maybe?", "{name}, does that match what you see?",
           "{name}, I saw you react to that", "What about you, {name}?", "{name}, how does {ref} go for you?"]

# --- participant lines ---------------------------------------------------------------------------

AGREES = ["Same here.", "Yes, exactly.", "I agree with {name}.", "That's true for us too.", "Totally.", "Same at our school.",
          "Yeah, I'd second that.", "Right, that's been our experience too.", "Exactly that.", "Absolutely.",
          "Mm-hm, same.", "Yes. All of that.", "Agreed.", "{name}'s right.", "Yeah, me too.", "Honestly, same.",
          "That's exactly it.", "Yes, one hundred percent.", "Same for my team.", "I'd say the same thing.",
          "Yeah, that's us too.", "Couldn't agree more."]
AGREES_AFTER_CLARIFY = ["Okay, then same for us.", "Got it. Same here, then.", "Ah, okay. Yes, us too.",
                        "Right, then I agree with {name}.", "Oh, then that's exactly our experience.", "Okay. Then yes, same.",
                        "Then I'm with {name} on that."]
SUMMARY_REPLIES = ["Yes, that's it.", "Pretty much, yes.", "Right.", "Exactly.", "Yes.", "That's right.", "More or less.",
                   "Yeah, that's fair.", "Yes, that's what I meant."]
CORRECTIONS = ["Not quite. It's more that {clause}.", "Sort of, but really {clause}.", "Close. I'd say {clause}."]
BUILD_LEADS = ["Building on what {name} said, ", "And to add to that, ", "Yes, and ", "To add to {name}'s point, ",
               "And ", "That connects to something else: ", "Adding to that, ", "On top of that, ",
               "And I'd add that ", "Right, and ", "Going off what {name} said, ", "", "", "Same idea, but "]
BUILD_CONTINUATIONS = ["{subj} also {pred}", "{subj} {pred}, and that's when {subj2} {pred2}",
                       "when {subj} {pred_prev}, we {action}", "because {subj} {pred_prev}, we now {action}",
                       "{subj} works even better when we {action}", "{subj} is also why we {action}",
                       "{subj} {pred_prev}, so now we {action}"]
WE_BUILDS = ["we {action_prev} too, and we also {action}", "when we {action_prev}, {subj2} {pred2}",
             "because we {action_prev}, we now {action}", "we {action_prev} as well, and {subj2} {pred2} because of it",
             "the reason we {action_prev} is that {subj2} {pred2}", "if you {action_prev}, you can also {action}"]
# Turns that reuse the previous speaker's words to disagree, with what they assert (for a summary).
CONTRASTS = [("For us, {subj} is the opposite; it {pred}.", "for us {subj} is the opposite"),
             ("I'm not sure {subj} {pred_prev} at our school, honestly.", "{subj} works differently at our school"),
             ("That's funny, because {subj} {pred} at my school.", "{subj} {pred} at my school"),
             ("Hm. {Subj} {pred_prev} on paper, but not for my team.", "{subj} {pred_prev} on paper, but not for my team"),
             ("I hear that, but {subj} {pred} for us.", "{subj} {pred} for us"),
             ("We had {subj} too, and it {pred_past}.", "{subj} {pred_past} for us"),
             ("See, I'd push back a little: {subj} {pred}.", "{subj} {pred}")]
WE_CONTRASTS = [("We tried to {action_prev} too, and it never stuck.", "we tried to {action_prev} and it never stuck"),
                ("At our school we stopped trying to {action_prev}.", "we stopped trying to {action_prev}"),
                ("I don't think we could {action_prev} with our schedule.", "we could not {action_prev} with our schedule"),
                ("Honestly, we never {action_prev}; we {action}.", "we never {action_prev}"),
                ("Huh. We {action_prev} for a year and dropped it.", "we dropped it after a year")]
# Each clarifying question with the answers that fit it.
CLARIFIES = [
    ("When you say {ref}, do you mean {alt}?", ["Yes, that one.", "No, the other one. Sorry.", "Kind of, yes.", "No, ours is newer."]),
    ("Sorry, {name}, is that every week or just during the cycle?", ["Every week, at least in theory.", "Just during the cycle.", "Whenever we can, honestly."]),
    ("Wait, who runs {ref}?", ["The assistant principal, mostly.", "We take turns.", "The coach does.", "Nobody, officially."]),
    ("Is that the whole school or just your team?", ["Just our team, yes.", "The whole school, since January.", "Our grade, plus the specialists."]),
    ("{name}, did you mean {alt}?", ["Yes, {alt}.", "No, sorry, I wasn't clear. The other one.", "Right, that one."]),
    ("How often does that happen?", ["Maybe twice a month.", "Every week.", "Less than it should."]),
    ("Sorry, is {ref} the district one or your own?", ["The district one.", "Ours. We made it up.", "Both, kind of."]),
    ("Wait, is that this year?", ["Since the fall.", "This year and last.", "Yes, just this year."]),
    ("Do you mean {alt}, or something else?", ["{Alt}, yes.", "Something else, actually: ours.", "Mostly {alt}."]),
    ("Is that the same as {alt}?", ["Pretty much.", "No, it's newer.", "Same idea, different name."]),
    ("Sorry, which one do you mean?", ["{Ref}, the one we started in the fall.", "The one on the shared drive.", "{Ref}. The new one."]),
    ("Just to clarify, {name}, is {ref} required or optional?", ["Optional, officially.", "Required, on paper.", "Required for new teachers."]),
    ("When did that start?", ["Since the fall.", "Last spring, I think.", "About two years ago."]),
    ("{name}, is that before or after the schedule change?", ["Before, mostly.", "After. It got worse after.", "Both, really."]),
    ("Hang on, are you talking about {ref} or {alt}?", ["{Ref}.", "{Alt}, sorry.", "Both, they blur together."]),
    ("Who decided that, {name}?", ["The leadership team.", "We did, as a team.", "It came from the district."]),
]
ALTS = ["the one the district started", "the six-week version", "the grade-level team only", "the old schedule",
        "the version from last year", "the whole staff", "the coach's version", "just the pilot classrooms",
        "the Wednesday one", "the new template"]
# A participant's question to the facilitator about the question, with the facilitator's answers.
TO_FACILITATOR_QS = [
    ("Do you mean this year, or since we started?", ["This year is fine.", "Either one. Start wherever you like."]),
    ("Are we talking about the district coaches or ours?", ["Yours, mostly.", "Both. Whichever you know best."]),
    ("Sorry, can you repeat the question?", ["Sure: {q}", "Of course. {q}"]),
    ("Is this about our school or the whole district?", ["Your school, mostly.", "Start with your school."]),
    ("Do you want the official version or the real one?", ["The real one, please.", "Whichever feels most true."]),
    ("Should we talk about our team or in general?", ["Your team is great.", "Either one. Start wherever you like."]),
]
ASIDES = ["Sorry, I have to step out at four.", "Can I grab another coffee first?", "I'm going to have to leave a bit early.",
          "Sorry, that was my phone.", "Is it okay if I eat while we talk?"]

PAST = {"finally has": "finally had", " is ": " was ", "gets ": "got ", "works ": "worked ", "depends ": "depended ",
        "looks ": "looked ", "keeps ": "kept ", "feels ": "felt ", "has gotten": "had gotten",
        "takes ": "took ", "gives ": "gave ", "runs ": "ran ", "never quite connects": "never quite connected"}


def past(pred: str) -> str:
    out = " " + pred + " "
    for a, b in PAST.items():
        if a in out:
            out = out.replace(a, b, 1)
            break
    return out.strip()


def second_person(text: str) -> str:
    """Turn a participant's own words into the facilitator's restatement of them."""
    swaps = [(r"\bour\b", "your"), (r"\bwe\b", "you"), (r"\bours\b", "yours"), (r"\bus\b", "you"),
             (r"\bmy\b", "your"), (r"\bI\b", "you"), (r"\bme\b", "you")]
    for pattern, repl in swaps:
        text = re.sub(pattern, repl, text)
    return text


def sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


class Group:
    """One focus group: its people, its topics, and the turns generated so far."""

    def __init__(self, rng: random.Random, number: int, district: str, schools: list[str]) -> None:
        self.rng = rng
        who, site_kind, unit = rng.choice(GROUP_KINDS)
        self.who = who
        self.unit = unit
        self.site = rng.choice(schools) if site_kind else f"{district} district office"
        self.district = district
        self.people = rng.sample(NAMES, rng.randint(3, 6))
        self.question = ""
        self.topics = rng.sample(list(TOPICS), rng.randint(2, 4))
        self.length = rng.randint(46, 76)  # blocks may run a few turns over
        self.turns: list[dict] = []
        self.number = number

    # -- helpers
    def add(self, speaker: str, text: str, move: str, **state) -> None:
        role = "facilitator" if speaker == "Facilitator" else "participant"
        self.turns.append({"speaker": speaker, "role": role, "text": text, "move": move, **state})

    def last(self) -> dict:
        return self.turns[-1]

    def other(self, *not_these: str) -> str:
        choices = [p for p in self.people if p not in not_these]
        return self.rng.choice(choices or self.people)

    def statement(self, topic: str, subj: str | None = None, kind: str | None = None) -> dict:
        """A participant's point: its text and the words a later turn may reuse.

        A point is either about a thing ("the data wall keeps getting rescheduled": kind "subj",
        reusable phrase ``subj``) or about what the team does ("we print the data": kind "we",
        reusable phrase ``action``); ``core`` is the clause a summary restates."""
        rng, t = self.rng, TOPICS[topic]
        kind = kind or ("subj" if subj or rng.random() >= 0.35 else "we")
        pred = rng.choice(PREDICATES)
        if kind == "we":
            action = rng.choice(t["actions"])
            core = f"we {action}"
            text = sentence(rng.choice(WE_OPENERS) + core + rng.choice(TAILS)) + "."
            point = {"kind": "we", "action": action, "subj": "", "pred": pred, "core": core}
        else:
            subj = subj or rng.choice(t["subjects"])
            core = f"{subj} {pred}"
            text = sentence(rng.choice(OPENERS) + core + rng.choice(TAILS)) + "."
            point = {"kind": "subj", "action": "", "subj": subj, "pred": pred, "core": core}
        if rng.random() < 0.4:
            text += " " + rng.choice(DETAILS)
        if rng.random() < 0.07:
            text += rng.choice(RHETORICAL)
        return {"text": text, **point, "topic": topic}

    # -- moves
    def participant_point(self, speaker: str, topic: str, move: str = "answer", **kw) -> None:
        s = self.statement(topic, **kw)
        self.add(speaker, s["text"], move, **{k: s[k] for k in POINT_KEYS})

    def choose(self, templates: list, point: dict):
        """A template; those that name the point's thing ({ref}) only when it has one."""
        if point.get("kind") == "subj":
            return self.rng.choice(templates)
        plain = [t for t in templates if "{ref}" not in (t[0] if isinstance(t, tuple) else t)]
        return self.rng.choice(plain)

    def run(self) -> list[dict]:
        rng = self.rng
        self.add("Facilitator", rng.choice(OPENING), "opening")
        if rng.random() < 0.2:
            self.add("Facilitator", rng.choice(INTRO_Q), "intro_q")
            for name in self.people:
                self.add(name, rng.choice(INTRO_A).format(name=name, grade=rng.choice(GRADES), nth=rng.choice(NTH)), "intro")
        per_topic = max(8, (self.length - len(self.turns) - 1) // len(self.topics))
        for i, topic in enumerate(self.topics):
            end = self.length - 1 if i == len(self.topics) - 1 else min(self.length - 1, len(self.turns) + per_topic)
            self.topic_block(topic, end)
            if len(self.turns) >= self.length - 1:
                break
        self.add("Facilitator", rng.choice(CLOSING), "closing")
        return self.turns

    def topic_block(self, topic: str, end: int) -> None:
        rng = self.rng
        lead = rng.choice(TOPIC_LEADS).format(label=TOPICS[topic]["label"])
        self.question = rng.choice(TOPIC_QUESTIONS[topic])
        self.add("Facilitator", lead + self.question, "topic_q", topic=topic)
        if rng.random() < 0.15:
            self.add("Facilitator", rng.choice(POLLS[topic]), "poll", topic=topic)
            for name in rng.sample(self.people, min(len(self.people), rng.randint(1, 2))):
                self.add(name, rng.choice(POLL_ANSWERS), "poll_answer", topic=topic)
        first = rng.choice(self.people)
        if rng.random() < 0.12:
            question, answers = rng.choice(TO_FACILITATOR_QS)
            self.add(first, question, "question_to_facilitator", topic=topic)
            asked = self.question
            self.add("Facilitator", rng.choice(answers).format(q=asked), "facilitator_answer", topic=topic)
        self.participant_point(first, topic)
        # a block ends only once the last move has had its answer
        while len(self.turns) < end or self.last()["move"] in ("invite", "probe", "summarise", "clarify", "poll"):
            self.step(topic)

    def step(self, topic: str) -> None:
        """Generate the next turn from the one before it."""
        rng, last = self.rng, self.last()
        if last["role"] == "facilitator":
            self.after_facilitator(topic, last)
        elif "core" in last:
            self.after_point(topic, last)
        elif last["move"] == "clarify":
            fmt = {"alt": last["alt"], "Alt": sentence(last["alt"]), "ref": last["ref"], "Ref": sentence(last["ref"])}
            self.add(last["to"], rng.choice(last["answers"]).format(**fmt), "clarify_answer", topic=topic, asker=last["speaker"])
        elif last["move"] == "clarify_answer" and rng.random() < 0.35:
            # the one who asked, now clear, agrees with the speaker
            self.add(last["asker"], rng.choice(AGREES_AFTER_CLARIFY).format(name=last["speaker"]), "agree")
        else:  # agree, short replies, asides: someone makes a fresh point or the facilitator steps in
            r = rng.random()
            prev = self.previous_point()
            if last["move"] == "agree" and prev and r < 0.12:  # a second voice agrees with the same point
                self.add(self.other(last["speaker"], prev["speaker"]), rng.choice(AGREES).format(name=prev["speaker"]), "agree")
            elif r < 0.48 and prev:
                self.invite(prev, exclude=(prev["speaker"], last["speaker"]))
            elif r < 0.70 and prev and prev["speaker"] != last["speaker"]:
                # back to the one who made the point, by name: a probe, though it looks like an invite
                text = self.choose(NAMED_PROBES, prev).format(name=prev["speaker"], ref=second_person(prev["subj"]))
                self.add("Facilitator", text, "probe", to=prev["speaker"], point={k: prev[k] for k in POINT_KEYS})
            elif r < 0.72:
                self.add("Facilitator", rng.choice(ACKS), "ack")
            elif r < 0.74:
                self.add("Facilitator", rng.choice(HOUSEKEEPING), "housekeeping")
            else:
                self.participant_point(self.other(last["speaker"]), topic)

    def previous_point(self) -> dict | None:
        for turn in reversed(self.turns):
            if turn["role"] == "participant" and "core" in turn:
                return turn
        return None

    def after_facilitator(self, topic: str, last: dict) -> None:
        rng = self.rng
        move = last["move"]
        if move == "probe":
            point = last["point"]
            if rng.random() < 0.6:
                # an example, tied back to the speaker's own words: not a build, since nobody else said them
                body = rng.choice(EXAMPLE_BODIES)
                if point["kind"] == "subj":
                    tie = rng.choice(["That's what I mean about {x}.", "That's {x} for you.", "And that was {x} at its best.",
                                      "So {x}, in a nutshell."]).format(x=point["subj"])
                else:
                    tie = rng.choice(["That's why we {x}.", "So now we {x}.", "After that we started to {x}."]).format(x=point["action"])
                lead = rng.choice(EXAMPLE_LEADS)
                text = lead + (sentence(body) if lead.endswith(". ") else body) + ". " + tie
                self.add(last["to"], text, "elaboration", **{**{k: point[k] for k in POINT_KEYS}, "core": body})
            else:
                self.participant_point(last["to"], topic, move="elaboration", subj=point["subj"] or None, kind=point["kind"])
        elif move == "summarise":
            who, point = last["to"], last["point"]
            r = rng.random()
            if r < 0.25 and len(self.people) > 1:
                # another participant agrees with the point the facilitator restated: coded, while the
                # speaker's own "yes, that's it" to the facilitator is not
                self.add(self.other(who), rng.choice(AGREES).format(name=who), "agree")
            elif r < 0.82:
                self.add(who, rng.choice(SUMMARY_REPLIES), "summary_reply")
            else:
                s = self.statement(topic, subj=point["subj"] or None, kind=point["kind"])
                while s["core"] == point["core"]:  # a correction says something else
                    s = self.statement(topic, subj=point["subj"] or None, kind=point["kind"])
                text = rng.choice(CORRECTIONS).format(clause=s["core"])
                self.add(who, text, "correction", **{k: s[k] for k in POINT_KEYS})
        elif move == "invite":
            prev = self.previous_point()
            if prev and prev["speaker"] != last["to"] and rng.random() < 0.25:
                # the invited participant agrees with the point they were asked about
                self.add(last["to"], rng.choice(AGREES).format(name=prev["speaker"]), "agree")
            else:
                self.participant_point(last["to"], topic)
        elif move == "named_housekeeping":
            self.add(last["to"], rng.choice(["Sorry, yes.", "Sure.", "Oh, sure.", "Yes, at four.", "No problem."]), "reply")
        elif move == "closing":
            return
        else:  # topic question, ack, housekeeping, poll, facilitator answer: someone picks up
            prev = self.previous_point()
            if move in ("ack", "housekeeping") and prev and rng.random() < 0.35:
                self.invite(prev, exclude=(prev["speaker"],))
            elif rng.random() < 0.04:
                self.add(self.other(), rng.choice(ASIDES), "aside")
            else:
                self.participant_point(rng.choice(self.people), topic)

    def invite(self, prev: dict, exclude: tuple[str, ...]) -> None:
        target = self.other(*exclude)
        recent = {t["speaker"] for t in self.turns[-8:]}
        template = self.choose(INVITES, prev)
        while ("spoken yet" in template and any(t["speaker"] == target for t in self.turns)) or (
                "quiet" in template and target in recent):
            template = self.choose(INVITES, prev)
        text = template.format(name=target, unit=self.unit, ref=second_person(prev["subj"]))
        self.add("Facilitator", text, "invite", to=target)

    def after_point(self, topic: str, last: dict) -> None:
        rng = self.rng
        speaker = last["speaker"]
        point = {k: last[k] for k in POINT_KEYS}
        subj, pred, action = last["subj"], last["pred"], last["action"]
        t = TOPICS[topic]
        r = rng.random()
        if last["move"] == "build" and rng.random() < 0.15:  # long chains of builds on one idea are rare
            r = rng.uniform(0, 0.46)
        if r < 0.12:  # probe the speaker
            text = self.choose(PROBES, point).format(ref=second_person(subj), name=speaker)
            self.add("Facilitator", text, "probe", to=speaker, point=point)
        elif r < 0.27:  # summarise the speaker, reusing their words
            clause = second_person(last["core"])
            text = rng.choice(SUMMARY_LEADS).format(clause=clause, Clause=sentence(clause))
            self.add("Facilitator", text, "summarise", to=speaker, point=point)
        elif r < 0.32:  # bring someone else in
            self.invite(last, exclude=(speaker,))
        elif r < 0.33:
            if rng.random() < 0.5:
                self.add("Facilitator", rng.choice(ACKS), "ack")
            else:
                target = self.other()
                self.add("Facilitator", rng.choice(NAMED_HOUSEKEEPING).format(name=target), "named_housekeeping", to=target)
        elif r < 0.43:  # another participant agrees
            self.add(self.other(speaker), rng.choice(AGREES).format(name=speaker), "agree")
        elif r < 0.72:  # another participant builds on it, reusing its words
            others = [p for p in PREDICATES if p != pred]
            fmt = {"subj": subj, "pred": rng.choice(others), "pred_prev": pred, "subj2": rng.choice(t["subjects"]),
                   "pred2": rng.choice(others), "action": rng.choice([a for a in t["actions"] if a != action]),
                   "action_prev": action}
            cont = rng.choice(BUILD_CONTINUATIONS if point["kind"] == "subj" else WE_BUILDS).format(**fmt)
            text = sentence(rng.choice(BUILD_LEADS).format(name=speaker) + cont) + "."
            if rng.random() < 0.3:
                text += " " + rng.choice(DETAILS)
            self.add(self.other(speaker), text, "build", **{**point, "pred": fmt["pred"], "core": cont})
        elif r < 0.89:  # another participant asks what they meant
            question, answers = self.choose(CLARIFIES, point)
            alt = rng.choice(ALTS)
            text = question.format(ref=second_person(subj), name=speaker, alt=alt)
            self.add(self.other(speaker), text, "clarify", to=speaker, ref=subj, alt=alt, answers=answers)
        elif r < 0.95:  # reuses the words but disagrees or contrasts: not coded
            other_pred = rng.choice([p for p in PREDICATES if p != pred])
            fmt = {"subj": subj, "Subj": sentence(subj), "pred": other_pred, "pred_prev": pred, "pred_past": past(other_pred),
                   "action_prev": action, "action": rng.choice([a for a in t["actions"] if a != action])}
            template, core = rng.choice(CONTRASTS if point["kind"] == "subj" else WE_CONTRASTS)
            self.add(self.other(speaker), template.format(**fmt), "contrast",
                     **{**point, "pred": other_pred, "core": core.format(**fmt)})
        else:  # a fresh point on the topic
            self.participant_point(self.other(speaker), topic)


POINT_KEYS = ("kind", "subj", "action", "pred", "core", "topic")

MOVE_CODES = {"probe": "facilitation.probe", "summarise": "facilitation.summarise", "invite": "facilitation.invite",
              "agree": "discussion.agree", "build": "discussion.build", "clarify": "discussion.clarify"}


#: The code a coder might wrongly give an uncoded move that looks like it.
CONFUSIONS = {"summary_reply": "discussion.agree", "poll_answer": "discussion.agree", "reply": "discussion.agree",
              "contrast": "discussion.build", "correction": "discussion.build", "answer": "discussion.build",
              "elaboration": "discussion.build", "question_to_facilitator": "discussion.clarify",
              "clarify_answer": "discussion.agree", "topic_q": "facilitation.probe", "poll": "facilitation.probe",
              "named_housekeeping": "facilitation.invite", "facilitator_answer": "facilitation.summarise"}


def flip(rng: random.Random, code: str, move: str, role: str, share: float) -> str:
    """With probability share, a coder's different label for the row, as a tired coder would slip: a
    coded turn left uncoded or given a sibling code; an uncoded turn given the code it resembles."""
    if rng.random() >= share:
        return code
    if code:
        siblings = [c for c in ROLE_CODES[role] if c != code]
        return "" if rng.random() < 0.6 else rng.choice(siblings)
    return CONFUSIONS.get(move, "")


def generate() -> tuple[list[dict], list[dict], dict]:
    """Both coders' rows and a summary of the counts."""
    rng = random.Random(SEED)
    districts = list(DISTRICTS)
    rows: list[dict] = []
    truth: list[str] = []
    docs: list[str] = []
    start = dt.date(2025, 9, 15)
    for n in range(1, GROUPS + 1):
        district = districts[(n - 1) % len(districts)]
        group = Group(rng, n, district, DISTRICTS[district])
        turns = group.run()
        slug = re.sub(r"[^a-z0-9]+", "-", f"{district} {group.site.replace(district, '')}".lower()).strip("-")
        doc = f"fg-{n:02d}-{slug}"
        docs.append(doc)
        place = group.site if group.site.endswith("office") else f"{group.site}, {district}"
        title = f"Focus group with {group.who}, {place} (fictional)"
        date = (start + dt.timedelta(days=(n - 1) * 3 + rng.randint(0, 2))).isoformat()
        for seq, turn in enumerate(turns, 1):
            code = MOVE_CODES.get(turn["move"], "")
            truth.append(code)
            rows.append({"document": doc, "title": title, "kind": "focus_group", "site": group.site,
                         "district": f"{district} (fictional)", "date": date, "seq": seq, "speaker": turn["speaker"],
                         "speaker_role": turn["role"], "text": turn["text"], "codes": "", "coder": FIRST_CODER,
                         "split": "", "_move": turn["move"]})
    test_docs = set(rng.sample(docs, round(GROUPS * TEST_SHARE)))
    second_docs = set(rng.sample(docs, SECOND_CODER_GROUPS))
    first, second = [], []
    for row, code in zip(rows, truth):
        row["split"] = "test" if row["document"] in test_docs else "train"
        row["codes"] = flip(rng, code, row["_move"], row["speaker_role"], FIRST_FLIP)
        first.append(row)
    for row, code in zip(rows, truth):
        if row["document"] in second_docs:
            second.append({**row, "codes": flip(rng, code, row["_move"], row["speaker_role"], SECOND_FLIP), "coder": SECOND_CODER})
    return first, second, summarise_counts(first, second, truth)


def summarise_counts(first: list[dict], second: list[dict], truth: list[str]) -> dict:
    by_code = Counter(r["codes"] for r in first if r["codes"])
    by_role = Counter(r["speaker_role"] for r in first)
    coded_by_role = Counter(r["speaker_role"] for r in first if r["codes"])
    flipped = sum(r["codes"] != t for r, t in zip(first, truth))
    rosa = {(r["document"], r["seq"]): r["codes"] for r in first}
    disagree = sum(rosa[(r["document"], r["seq"])] != r["codes"] for r in second)
    return {
        "documents": len({r["document"] for r in first}), "turns": len(first),
        "distinct_texts": len({r["text"] for r in first}),
        "uncoded": sum(1 for r in first if not r["codes"]), "by_code": by_code, "by_role": by_role,
        "coded_by_role": coded_by_role, "flipped": flipped,
        "split": Counter(r["split"] for r in first),
        "test_documents": len({r["document"] for r in first if r["split"] == "test"}),
        "second_documents": len({r["document"] for r in second}), "second_turns": len(second), "disagree": disagree,
    }


def write(path: Path, rows: list[dict]) -> None:
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.DictWriter(f, fieldnames=COLUMNS, extrasaction="ignore", lineterminator="\n")
        writer.writeheader()
        writer.writerows(rows)


BATCH_COLUMNS = ["document_id", "seq", "speaker", "code_id", "coder"]


def write_batch(path: Path, rows: list[dict]) -> None:
    """The second coder's codings as a `qualcode code --batch` sheet: the same documents cannot be
    ingested twice into one project, so the second coder's labels come in as decisions."""
    with path.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(BATCH_COLUMNS)
        for r in rows:
            for code in filter(None, r["codes"].split(";")):
                writer.writerow([r["document"], r["seq"], r["speaker"], code, r["coder"]])


def report(c: dict) -> str:
    lines = [f"{c['documents']} focus groups, {c['turns']:,} turns ({c['distinct_texts']:,} distinct texts); "
             f"split: {c['split']['train']:,} train / {c['split']['test']:,} test turns ({c['test_documents']} test groups)",
             f"uncoded: {c['uncoded']:,} ({c['uncoded'] / c['turns']:.0%})"]
    for role in ("facilitator", "participant"):
        lines.append(f"{role}: {c['by_role'][role]:,} turns, {c['coded_by_role'][role]:,} coded")
    for code in FACILITATION + DISCUSSION:
        lines.append(f"  {code:24} {c['by_code'][code]:5,}")
    lines.append(f"{FIRST_CODER}: {c['flipped']} labels ({c['flipped'] / c['turns']:.1%}) differ from the generating rule")
    lines.append(f"{SECOND_CODER}: {c['second_documents']} groups, {c['second_turns']:,} turns, disagrees with "
                 f"{FIRST_CODER} on {c['disagree']} ({c['disagree'] / c['second_turns']:.1%})")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parent,
                        help="folder for the CSV files (default: next to this script)")
    parser.add_argument("--quiet", action="store_true", help="do not print the counts")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    first, second, counts = generate()
    write(args.out / "focus-groups.csv", first)
    write(args.out / "second-coder.csv", second)
    write_batch(args.out / "second-coder-batch.csv", second)
    if not args.quiet:
        print(report(counts))
    return 0


if __name__ == "__main__":
    sys.exit(main())
